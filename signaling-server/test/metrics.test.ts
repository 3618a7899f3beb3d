/** GET /metrics: Prometheus text with peers by role, matches, unmatched requests, rejections and latency. */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryRegistry, type AddPeerOptions, type AddPeerResult, type NewPeer } from '../src/registry.js';
import type { SignalingServer } from '../src/server.js';
import { RawPeer, newExitKey, sample, scrape, startTestServer } from './helpers.js';

let server: SignalingServer;
const peers: RawPeer[] = [];

afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await server?.close();
});

describe('/metrics', () => {
  it('counts peers by role, matches, unmatched requests, rejections and match latency', async () => {
    server = await startTestServer();
    const join = async (hello: Record<string, unknown>) => {
      const p = await RawPeer.join(server.url, hello);
      peers.push(p);
      return p;
    };
    await join({ role: 'exit', exitKey: newExitKey() });
    const relay = await join({ role: 'relay', capacity: 1 });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'a', mode: 'two-hop' });
    await client.next('path');
    await relay.next('link');
    client.send({ type: 'path-request', requestId: 'b', mode: 'two-hop' });
    expect((await client.next('error')).code).toBe('no-relay-available');
    client.send('not json');
    expect((await client.next('error')).code).toBe('malformed');

    const res = await fetch(server.url.replace('ws://', 'http://') + 'metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(sample(text, 'underpass_signaling_peers{role="client"}')).toBe(1);
    expect(sample(text, 'underpass_signaling_peers{role="relay"}')).toBe(1);
    expect(sample(text, 'underpass_signaling_peers{role="exit"}')).toBe(1);
    expect(sample(text, 'underpass_signaling_connections')).toBe(3);
    expect(sample(text, 'underpass_signaling_matches_total{mode="two-hop"}')).toBe(1);
    expect(sample(text, 'underpass_signaling_unmatched_requests_total{code="no-relay-available"}')).toBe(1);
    expect(sample(text, 'underpass_signaling_rejections_total{reason="malformed"}')).toBe(1);
    expect(sample(text, 'underpass_signaling_match_latency_seconds_count')).toBe(1);
    expect(sample(text, 'underpass_signaling_process_resident_memory_bytes')).toBeGreaterThan(0);

    relay.close();
    await relay.closed;
    // The server sees the close a moment after the peer does.
    await expect
      .poll(() => scrape(server, 'underpass_signaling_peers{role="relay"}'), { timeout: 5_000 })
      .toBe(0);
  });

  it('counts refusals by the broker, duplicate exit keys, duplicate peer ids and ping timeouts', async () => {
    // A registry that can report a peer id as taken (ids are random, so a real clash cannot be forced).
    // Or an exit key as held: the broker takes over the keys exits prove, so a real refusal cannot be forced.
    class ClashingRegistry extends MemoryRegistry {
      clash: 'duplicate-peer' | 'duplicate-exit-key' | undefined;
      override async addPeer(peer: NewPeer, options?: AddPeerOptions): Promise<AddPeerResult> {
        if (this.clash) return { ok: false, reason: this.clash };
        return super.addPeer(peer, options);
      }
    }
    const registry = new ClashingRegistry();
    server = await startTestServer({ registry, limits: { pingIntervalMs: 300 } });
    const metrics = async () => (await fetch(server.url.replace('ws://', 'http://') + 'metrics')).text();
    const reason = (text: string, r: string) =>
      sample(text, `underpass_signaling_rejections_total{reason="${r}"}`);

    const exitKey = newExitKey();
    peers.push(await RawPeer.join(server.url, { role: 'exit', exitKey }));
    const client = await RawPeer.join(server.url, { role: 'client' });
    peers.push(client);
    client.send({ type: 'connect-exit', requestId: 'c', exitKey });
    expect(await client.next('error')).toMatchObject({ code: 'not-allowed', requestId: 'c' });
    client.send({ type: 'hello', v: 1, role: 'client' });
    expect(await client.next('error')).toMatchObject({ code: 'not-allowed' });

    registry.clash = 'duplicate-exit-key';
    await expect(RawPeer.join(server.url, { role: 'exit', exitKey })).rejects.toThrow();

    registry.clash = 'duplicate-peer';
    const dup = await RawPeer.open(server.url);
    peers.push(dup);
    dup.send({ type: 'hello', v: 1, role: 'client' });
    expect(await dup.next('error')).toMatchObject({ code: 'not-allowed', message: 'peer id already in use' });
    expect((await dup.closed).code).toBe(1008);
    registry.clash = undefined;

    const deaf = await RawPeer.open(server.url, { autoPong: false });
    peers.push(deaf);
    expect((await deaf.closed).code).toBe(1006);

    const text = await metrics();
    expect(reason(text, 'not-allowed')).toBe(2);
    expect(reason(text, 'duplicate-exit-key')).toBe(1);
    expect(reason(text, 'duplicate-peer')).toBe(1);
    expect(reason(text, 'ping-timeout')).toBe(1);
  });
});
