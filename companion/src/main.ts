import { parseArgs } from 'node:util';
import { runNativeHost } from './host.js';
import { BROWSERS, installNativeHost, uninstallNativeHost, type BrowserName } from './install.js';
import { runServe } from './serve.js';
import { errorMessage } from '@underpass/shared/errors';

/** `underpass-companion <command>`: see USAGE. Exit codes: 0 done, 1 failure, 2 usage or bad caller. */

const USAGE = `usage:
  underpass-companion native <origin>            run as a native-messaging host (the browser does this)
  underpass-companion install [--browser chromium|chrome|firefox|all] [--user-data-dir DIR]
                              --extension-id ID [--extension-id ID ...]
  underpass-companion uninstall [--browser ...] [--user-data-dir DIR]
  underpass-companion serve [--socks-port 1080] [--data-port N] [--extension-id ID]
                              start by hand and print a pairing code (when native messaging is unavailable)`;

const log = (line: string) => process.stderr.write(`underpass-companion: ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'native':
      return native(rest);
    case 'install':
    case 'uninstall':
      return install(command, rest);
    case 'serve':
      return serve(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stderr.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
      return 2;
  }
}

async function native(args: string[]): Promise<number> {
  // stdout belongs to the framing: anything printed there by mistake would corrupt the browser's port.
  console.log = console.error;
  console.info = console.error;
  const code = await runNativeHost({ args, input: process.stdin, output: process.stdout, log });
  return code;
}

async function install(command: 'install' | 'uninstall', args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      browser: { type: 'string', multiple: true },
      'user-data-dir': { type: 'string' },
      'extension-id': { type: 'string', multiple: true },
    },
    strict: true,
  });
  const requested = values.browser ?? ['all'];
  const all = requested.includes('all');
  const browsers: BrowserName[] = [];
  for (const name of all ? BROWSERS : requested) {
    if (!(BROWSERS as readonly string[]).includes(name)) {
      process.stderr.write(`unknown browser ${JSON.stringify(name)}\n${USAGE}\n`);
      return 2;
    }
    browsers.push(name as BrowserName);
  }
  const userDataDir = values['user-data-dir'];
  if (command === 'uninstall') {
    for (const path of await uninstallNativeHost({ browsers, userDataDir })) log(`removed ${path}`);
    return 0;
  }
  const installed = await installNativeHost({
    browsers,
    userDataDir,
    extensionIds: values['extension-id'] ?? [],
    skipBrowsersWithoutIds: all,
  });
  for (const host of installed) log(`${host.browser}: ${host.manifestPath}`);
  return 0;
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'socks-port': { type: 'string', default: '1080' },
      'data-port': { type: 'string', default: '0' },
      'extension-id': { type: 'string' },
    },
    strict: true,
  });
  const socksPort = parsePort(values['socks-port']);
  const dataPort = parsePort(values['data-port']);
  const id = values['extension-id'];
  if (socksPort === undefined || dataPort === undefined || (id !== undefined && !/^[a-p]{32}$/.test(id))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const companion = await runServe({
    socksPort,
    dataPort,
    extensionOrigin: id === undefined ? undefined : `chrome-extension://${id}/`,
    print: (line) => process.stdout.write(`${line}\n`),
    log,
  });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await companion.close();
  return 0;
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(errorMessage(error));
    process.exit(1);
  },
);
