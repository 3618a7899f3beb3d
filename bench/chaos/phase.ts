/**
 * One phase of the chaos run: a whole network built for one signaling setup (one instance in memory, or two
 * instances sharing Redis), the user's load running all the time, and faults injected one after the other at
 * random until the phase's time is up. Each fault is followed until the user's next successful request (or a
 * cap), so that every recovery is measured alone, then a random pause before the next one.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisServer, type RedisServer } from '../lib/redis-server';
import { freePort } from '../lib/ports';
import { startTestSite, type TestSite } from '../../test/http-site';
import { Cleanup } from '../../e2e/fixtures/network';
import { chromiumPath } from '../../e2e/fixtures/profile';
import { expectSwitchStatus, switchControl } from '../../e2e/fixtures/ui';
import { launchProtectedClient, Volunteer, type ClientBrowser } from './browsers';
import { ServerProcess } from './child-process';
import { ClientNetwork, SERVICE_ADDRESS } from './client-network';
import { UserLoad, type RequestRecord } from './load';
import { FAULT_KINDS, type FaultKind, type FaultRecord } from './summary';
import { writeDevelopmentCertificate } from '../../exit-node/src/exit-node';

export type SignalingMode = 'memory' | 'redis';

export type PhaseOptions = {
  mode: SignalingMode;
  durationMs: number;
  volunteers: number;
  random: () => number;
  /** Where the servers' logs go. */
  logDir: string;
  log: (line: string) => void;
};

export type PhaseResult = {
  mode: SignalingMode;
  requests: RequestRecord[];
  faults: FaultRecord[];
  /** Source addresses the website saw while the user's load ran. */
  witnessed: string[];
  exitAddresses: string[];
};

const EXIT_ADDRESSES = ['127.0.0.3', '127.0.0.4'];
const FILE_SIZE = 1024 * 1024;
/** A fault not followed by a successful request within this long is "unrecovered". */
const RECOVERY_CAP_MS = 60_000;
/** How long a killed part stays down before the harness starts it again (uniform in this range). */
const DOWN_MS: [number, number] = [2_000, 6_000];
/** Quiet time between one fault's recovery and the next fault. */
const PAUSE_MS: [number, number] = [3_000, 8_000];

const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const SIGNALING_BIN = repo('signaling-server/bin/underpass-signaling.js');
const EXIT_BIN = repo('exit-node/bin/underpass-exit.js');

const between = (random: () => number, [low, high]: [number, number]) =>
  Math.round(low + random() * (high - low));

function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (condition()) {
        clearInterval(timer);
        resolve(true);
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        resolve(false);
      }
    }, 50);
  });
}

/** The website's page, fetched directly here before any client runs (not counted by the witness). */
function fetchDirect(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(url, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks)));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('direct fetch timed out')));
    req.end();
  });
}

class Network {
  readonly cleanup = new Cleanup();
  website!: TestSite;
  redis: RedisServer | undefined;
  signaling: { server: ServerProcess; url: string; port: number }[] = [];
  exits: { server: ServerProcess; address: string }[] = [];
  volunteers: Volunteer[] = [];
  client!: ClientBrowser;
  clientNetwork!: ClientNetwork;

  constructor(private readonly options: PhaseOptions) {}

  /** Which signaling instance the i-th party uses: all the one in memory; with Redis they alternate. */
  private signalingFor(i: number): string {
    return this.signaling[i % this.signaling.length]!.url;
  }

  async build(): Promise<void> {
    const { mode, logDir, log } = this.options;
    const workDir = await mkdtemp(join(tmpdir(), 'underpass-chaos-'));
    this.cleanup.push(() => rm(workDir, { recursive: true, force: true }));
    this.clientNetwork = await ClientNetwork.create(workDir, chromiumPath());
    this.cleanup.push(() => this.clientNetwork.close());

    this.website = await startTestSite({ host: SERVICE_ADDRESS, fileSize: FILE_SIZE });
    this.cleanup.push(() => this.website.close());

    if (mode === 'redis') {
      this.redis = await startRedisServer();
      this.cleanup.push(() => this.redis!.stop());
    }
    const instances = mode === 'redis' ? 2 : 1;
    for (let i = 0; i < instances; i += 1) {
      const port = await freePort(SERVICE_ADDRESS);
      const server = new ServerProcess({
        name: `signaling-${mode}-${i + 1}`,
        script: SIGNALING_BIN,
        args: [
          '--port',
          String(port),
          '--host',
          SERVICE_ADDRESS,
          '--log-level',
          'info',
          ...(this.redis ? ['--redis', this.redis.url, '--redis-prefix', 'chaos:'] : []),
        ],
        ready: /"msg":"ready"/,
        logFile: join(logDir, `signaling-${mode}-${i + 1}.log`),
      });
      await server.start();
      this.cleanup.push(() => server.close());
      this.signaling.push({ server, url: `ws://${SERVICE_ADDRESS}:${port}`, port });
    }
    log(
      `signaling: ${this.signaling.map((s) => s.url).join(', ')}${this.redis ? ` on ${this.redis.url}` : ' (in memory)'}`,
    );

    for (const [i, address] of EXIT_ADDRESSES.entries()) {
      const dataDir = join(workDir, `exit-${i + 1}`);
      // The exit process runs as an operator runs it, with a certificate file (from the development directory
      // key, which the chaos clients' extension build trusts).
      await writeDevelopmentCertificate({
        dataDir,
        allowDestinations: [`${SERVICE_ADDRESS}/32`],
        servesTorrents: false,
      });
      const server = new ServerProcess({
        name: `exit-${i + 1}`,
        script: EXIT_BIN,
        args: [
          '--signaling',
          this.signalingFor(i),
          '--data-dir',
          dataDir,
          '--allow-destination',
          `${SERVICE_ADDRESS}/32`,
          '--bind-address',
          address,
        ],
        ready: /"event":"ready"/,
        logFile: join(logDir, `${mode}-exit-${i + 1}.log`),
      });
      await server.start();
      this.cleanup.push(() => server.close());
      this.exits.push({ server, address });
    }
    log(`exits: ${EXIT_ADDRESSES.join(', ')}`);

    for (let i = 0; i < this.options.volunteers; i += 1) {
      const volunteer = new Volunteer(`chaos-volunteer-${i + 1}`, this.signalingFor(i + 1));
      this.cleanup.push(() => volunteer.close());
      await volunteer.start();
      this.volunteers.push(volunteer);
    }
    log(`volunteers: ${this.volunteers.length} on`);

    this.client = await launchProtectedClient(this.clientNetwork.chromiumPath, this.signalingFor(0));
    this.cleanup.push(() => this.client.profile.close());
    log('client: Protect on');
  }

  async close(): Promise<void> {
    await this.cleanup.run();
  }
}

/** One fault: injects it, and returns what brings the part back (nothing for the companion: the extension must). */
async function inject(
  network: Network,
  kind: FaultKind,
  random: () => number,
  witnessed: () => readonly string[],
): Promise<{ target: string; restore?: () => Promise<void> }> {
  switch (kind) {
    case 'relay_loss': {
      const carrying: Volunteer[] = [];
      for (const volunteer of network.volunteers)
        if ((await volunteer.clients()) > 0) carrying.push(volunteer);
      const pool = carrying.length > 0 ? carrying : network.volunteers.filter((v) => v.up);
      const volunteer = pool[Math.floor(random() * pool.length)]!;
      await volunteer.kill();
      return {
        target: `${volunteer.name}${carrying.includes(volunteer) ? ' (relaying the client)' : ''}`,
        restore: () => volunteer.start(),
      };
    }
    case 'exit_loss': {
      // The exit that served the user last, by the witness.
      const seen = witnessed();
      const last = [...seen].reverse().find((address) => EXIT_ADDRESSES.includes(address));
      const exit = network.exits.find((e) => e.address === last) ?? network.exits[0]!;
      await exit.server.kill();
      return { target: `exit ${exit.address}`, restore: () => exit.server.start() };
    }
    case 'signaling_restart': {
      const instance = network.signaling[Math.floor(random() * network.signaling.length)]!;
      await instance.server.kill();
      return { target: `signaling ${instance.url}`, restore: () => instance.server.start() };
    }
    case 'companion_loss': {
      const pids = await network.clientNetwork.pids();
      let killed = 0;
      for (const pid of pids) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes('underpass-companion')) {
          process.kill(pid, 'SIGKILL');
          killed += 1;
        }
      }
      if (killed === 0) throw new Error('no companion process found in the client namespace');
      return { target: `companion (${killed} process${killed === 1 ? '' : 'es'})` };
    }
    case 'network_drop':
      await network.clientNetwork.drop();
      return { target: 'client network', restore: () => network.clientNetwork.restore() };
  }
}

/** Protect off, then on, in the client's popup, as a user whose pages stopped loading would. */
async function repair(network: Network, log: (line: string) => void): Promise<void> {
  const popup = network.client.popup;
  log('  the user turns Protect off and on');
  await switchControl(popup, 'protect').click();
  await expectSwitchStatus(popup, 'protect', 'off', 30_000);
  await switchControl(popup, 'protect').click();
  await expectSwitchStatus(popup, 'protect', 'on', 120_000);
}

export async function runPhase(options: PhaseOptions): Promise<PhaseResult> {
  const { random, log } = options;
  const network = new Network(options);
  const faults: FaultRecord[] = [];
  let load: UserLoad | undefined;
  let witnessFrom = 0;
  try {
    await network.build();
    const site = network.website;
    const pageBody = await fetchDirect(`${site.url}/`);
    witnessFrom = site.remoteAddresses.length;
    load = new UserLoad({
      context: network.client.profile.context,
      siteUrl: site.url,
      pageBody,
      fileSize: site.fileSize,
      fileSha256: site.fileSha256,
    });
    await load.start();
    const running = load;
    const started = Date.now();
    if (!(await waitUntil(() => running.firstSuccessSince(started) !== undefined, RECOVERY_CAP_MS))) {
      throw new Error('no request succeeded through the tunnel before any fault');
    }
    log(`load running; faults for ${Math.round(options.durationMs / 1000)} s`);

    // A shuffled bag: every kind comes once before any comes again.
    let bag: FaultKind[] = [];
    while (Date.now() - started < options.durationMs) {
      if (bag.length === 0) bag = [...FAULT_KINDS].sort(() => random() - 0.5);
      const kind = bag.pop()!;
      const at = Date.now();
      const { target, restore } = await inject(network, kind, random, () =>
        site.remoteAddresses.slice(witnessFrom),
      );
      const fault: FaultRecord = { kind, at, target };
      faults.push(fault);
      if (restore) {
        await new Promise((resolve) => setTimeout(resolve, between(random, DOWN_MS)));
        await restore();
        fault.restoredAt = Date.now();
      }
      await waitUntil(() => running.firstSuccessSince(at) !== undefined, RECOVERY_CAP_MS);
      const recoveredAt = running.firstSuccessSince(at);
      if (recoveredAt !== undefined && recoveredAt - at <= RECOVERY_CAP_MS) fault.recoveredAt = recoveredAt;
      log(
        `${kind.padEnd(17)} ${target.padEnd(40)} ${
          fault.recoveredAt !== undefined ? `recovered in ${fault.recoveredAt - at} ms` : 'NOT recovered'
        }`,
      );
      if (fault.recoveredAt === undefined) {
        // What a user would do: turn Protect off and on. Counted, so that a run that needed it says so.
        // The load pauses meanwhile: with Protect off, pages rightly go direct, and that is no leak.
        fault.userRepair = true;
        await running.pause();
        await repair(network, log);
        const repairedFrom = Date.now();
        running.resume();
        if (
          !(await waitUntil(() => running.firstSuccessSince(repairedFrom) !== undefined, RECOVERY_CAP_MS))
        ) {
          throw new Error(`the client did not come back after ${kind}, even with Protect turned off and on`);
        }
        fault.settledAt = running.firstSuccessSince(repairedFrom);
      } else {
        fault.settledAt = Math.max(fault.recoveredAt, fault.restoredAt ?? at);
      }
      await new Promise((resolve) => setTimeout(resolve, between(random, PAUSE_MS)));
    }
    await running.stop();
    return {
      mode: options.mode,
      requests: [...running.records],
      faults,
      witnessed: site.remoteAddresses.slice(witnessFrom),
      exitAddresses: EXIT_ADDRESSES,
    };
  } finally {
    await load?.stop().catch(() => undefined);
    await network.close();
  }
}
