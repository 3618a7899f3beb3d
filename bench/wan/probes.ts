/**
 * Measurements of the emulated links themselves, by small Node programs in the namespaces (there is no ping on
 * these machines): RTT by a TCP echo, loss by counted UDP datagrams, rate by a timed TCP transfer. Used by the
 * harness's test (test/wan/) and by `accuracy.ts`, which prints them for the benchmark's conditions.
 */
import type { ChildProcess } from 'node:child_process';
import type { WanNetwork } from './network.js';

/**
 * Role `server`'s listeners: TCP echo on 7000, a TCP sink answering its byte count and ms on 7001, and on 7002 a
 * UDP counter per sender that answers `count` with how many datagrams that sender's address and port sent.
 */
const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const host = process.argv[1];
net.createServer((s) => s.pipe(s)).listen(7000, host);
net.createServer((s) => { let n = 0, first = 0; s.on('data', (c) => { if (!n) first = performance.now(); n += c.length; });
  s.on('end', () => s.end(JSON.stringify({ bytes: n, ms: performance.now() - first }))); }).listen(7001, host);
// A large receive buffer (the kernel caps it at net.core.rmem_max): only the link may lose datagrams.
const u = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 }); const got = new Map();
u.on('message', (m, from) => { const key = from.address + ':' + from.port;
  if (String(m) === 'count') u.send(String(got.get(key) ?? 0), from.port, from.address); else got.set(key, (got.get(key) ?? 0) + 1); });
u.bind(7002, host, () => console.log(JSON.stringify({ ready: 1 })));
`;

/** The first JSON line a program prints. */
function nextLine(child: ChildProcess): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const end = text.indexOf('\n');
      if (end < 0) return;
      child.stdout!.off('data', onData);
      resolve(JSON.parse(text.slice(0, end)) as Record<string, number>);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited (${code}) before a line: ${text}`)));
  });
}

const node = (network: WanNetwork, role: string, script: string) =>
  network.spawn(role, process.execPath, ['-e', script]);

export class Probes {
  private constructor(
    private readonly network: WanNetwork,
    private readonly server: string,
    private readonly process: ChildProcess,
  ) {}

  /** Starts the listeners in role `server`'s namespace. */
  static async start(network: WanNetwork, server: string): Promise<Probes> {
    const child = network.spawn(server, process.execPath, ['-e', SERVER, network.address(server)]);
    await nextLine(child);
    return new Probes(network, server, child);
  }

  /** Round trips of one byte over a TCP connection from `from`, after the handshake, sorted (ms). */
  async rtts(from: string, samples: number): Promise<number[]> {
    const to = this.network.address(this.server);
    const result = await nextLine(
      node(
        this.network,
        from,
        `const s = require('node:net').connect({ port: 7000, host: '${to}', noDelay: true }); const rtts = []; let t = 0;
         s.on('connect', () => { t = performance.now(); s.write('x'); });
         s.on('data', () => { rtts.push(performance.now() - t); if (rtts.length < ${samples}) { t = performance.now(); s.write('x'); }
           else { console.log(JSON.stringify(Object.assign({}, rtts.sort((x, y) => x - y)))); s.end(); } });`,
      ),
    );
    return Object.values(result);
  }

  /**
   * Share of `sent` UDP datagrams from `from` that did not arrive. Paced (10 a millisecond or so) so that only the
   * link loses, not the receiver's socket buffer. The count is asked for again if its request or answer is lost.
   */
  async loss(from: string, sent: number): Promise<number> {
    const to = this.network.address(this.server);
    const { received } = await nextLine(
      node(
        this.network,
        from,
        `const u = require('node:dgram').createSocket('udp4'); let i = 0;
         u.bind(0, () => { const next = () => {
           if (i < ${sent}) { for (let k = 0; k < 10 && i < ${sent}; k++, i++) u.send('x', 7002, '${to}'); setTimeout(next, 1); }
           else { const ask = () => u.send('count', 7002, '${to}'); setTimeout(ask, 100); setInterval(ask, 500).unref(); } }; next(); });
         u.on('message', (m) => { console.log(JSON.stringify({ received: Number(String(m)) })); u.close(); });`,
      ),
    );
    return 1 - received! / sent;
  }

  /** Mbit/s of one TCP upload of `bytes` from `from`, from the server's first byte to its last. */
  async tcpMbps(from: string, bytes: number): Promise<number> {
    const to = this.network.address(this.server);
    const result = await nextLine(
      node(
        this.network,
        from,
        `const s = require('node:net').connect(7001, '${to}', () => s.end(Buffer.alloc(${bytes})));
         let text = ''; s.on('data', (c) => (text += c)); s.on('end', () => console.log(text));`,
      ),
    );
    if (result.bytes !== bytes) throw new Error(`the sink got ${result.bytes} of ${bytes} bytes`);
    return (bytes * 8) / (result.ms! / 1000) / 1e6;
  }

  stop(): void {
    this.process.kill();
  }
}
