import { startCompanion, type Companion } from './companion.js';
import { encodePairingCode } from '@underpass/shared/data-port';

/**
 * The companion started by hand, for where native messaging cannot work (Windows without a registry entry,
 * a sandboxed browser, a companion on a fixed port). It is just as locked: the extension must present the
 * secret in the pairing code, which this prints once and which is good for this run only.
 */
export interface ServeOptions {
  socksPort: number;
  dataPort: number;
  extensionOrigin?: string;
  /** Where the directions and the code go: the person who started us. */
  print: (line: string) => void;
  log: (line: string) => void;
}

export async function runServe(options: ServeOptions): Promise<Companion> {
  const companion = await startCompanion({
    socksPort: options.socksPort,
    dataPort: options.dataPort,
    extensionOrigin: options.extensionOrigin,
  });
  const code = encodePairingCode({
    dataPort: companion.dataPort,
    socksPort: companion.socksPort,
    secret: companion.secret,
  });
  options.print(
    `Underpass companion listening: SOCKS5 127.0.0.1:${companion.socksPort}, data port 127.0.0.1:${companion.dataPort}`,
  );
  options.print(
    'Paste this pairing code into the Underpass options page (good until this process stops; keep it private):',
  );
  options.print('');
  options.print(code);
  options.print('');
  companion.on('tunnel', (up) => options.log(up ? 'extension connected' : 'extension disconnected'));
  return companion;
}
