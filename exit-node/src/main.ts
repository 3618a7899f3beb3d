import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { defaultDataDir, startExitNode } from './exit-node.js';

const USAGE = `underpass-exit — the Underpass exit node

  --signaling URL            signaling server (env UNDERPASS_SIGNALING_URL, default ws://127.0.0.1:8600)
  --data-dir DIR             where the static key lives (env UNDERPASS_EXIT_DATA_DIR, default ~/.local/share/underpass-exit)
  --key-file FILE            the static key file (default DATA_DIR/exit-key.json, created 0600 on first start)
  --allow-destination CIDR   allow a range the default policy denies (repeatable; e.g. 127.0.0.1/32 for tests)
  --bind-address ADDR        local address for outgoing connections
  --capacity N               links served at once (default 100)
  --ice-server URL           STUN/TURN server for peers behind NAT (repeatable; default none)
  --help`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      signaling: { type: 'string' },
      'data-dir': { type: 'string' },
      'key-file': { type: 'string' },
      'allow-destination': { type: 'string', multiple: true },
      'bind-address': { type: 'string' },
      capacity: { type: 'string' },
      'ice-server': { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const logger = pino({ name: 'underpass-exit' });
  const capacity = values.capacity === undefined ? undefined : Number(values.capacity);
  if (capacity !== undefined && (!Number.isInteger(capacity) || capacity < 1 || capacity > 1000)) {
    throw new Error('--capacity must be a whole number from 1 to 1000');
  }
  const exit = await startExitNode({
    signalingUrl: values.signaling ?? process.env.UNDERPASS_SIGNALING_URL ?? 'ws://127.0.0.1:8600',
    dataDir: values['data-dir'] ?? defaultDataDir(),
    keyFile: values['key-file'],
    allowDestinations: values['allow-destination'] ?? [],
    bindAddress: values['bind-address'],
    capacity,
    iceServers: (values['ice-server'] ?? []).map((urls) => ({ urls })),
    log: (event, fields) => logger.info({ event, ...fields }),
  });
  logger.info({ event: 'ready', exitKey: exit.exitKey, peerId: exit.peerId });
  const shutdown = () => {
    logger.info({ event: 'shutdown' });
    void exit.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: Error) => {
  console.error(`underpass-exit: ${error.message}`);
  process.exit(1);
});
