import { runNativeHost } from './host.js';
import {
  BROWSERS,
  installNativeHost,
  isChromeExtensionId,
  isFirefoxExtensionId,
  uninstallNativeHost,
  type BrowserName,
} from './install.js';
import { runServe } from './serve.js';
import {
  EXIT_OK,
  HELP_OPTION,
  HELP_WIDTH,
  UsageError,
  helpTable,
  parseFlags,
  runCli,
  wrap,
  type HelpRow,
} from '@underpass/shared/cli';

/**
 * `underpass-companion <command>`: see USAGE. Exit codes (shared/src/cli.ts): 0 done, 1 failure, 2 usage error
 * or a caller that is not an extension.
 */

const TOOL = 'underpass-companion';
const HELP_ROW: HelpRow = ['-h, --help', 'print this and exit'];

type CommandHelp = { synopsis: string; summary: string; options: readonly HelpRow[] };

const COMMANDS = {
  install: {
    synopsis: 'install --extension-id ID [--extension-id ID ...] [--browser NAME ...] [--user-data-dir DIR]',
    summary:
      'register the companion with the browser (a native-messaging host), so that the extension starts it ' +
      'by itself. Linux and macOS; elsewhere use serve.',
    options: [
      [
        '--extension-id ID',
        'the extension allowed to start it: 32 letters a-p (Chromium, Chrome) or name@domain / {uuid} ' +
          '(Firefox); repeatable, at least one',
      ],
      [
        '--browser NAME',
        `${[...BROWSERS, 'all'].join(', ')} (repeatable; default all: every browser an id was given for)`,
      ],
      ['--user-data-dir DIR', "a Chromium/Chrome profile directory instead of the browser's default"],
      HELP_ROW,
    ],
  },
  uninstall: {
    synopsis: 'uninstall [--browser NAME ...] [--user-data-dir DIR]',
    summary: 'remove what install wrote',
    options: [
      ['--browser NAME', `${[...BROWSERS, 'all'].join(', ')} (repeatable; default all)`],
      ['--user-data-dir DIR', 'the Chromium/Chrome profile directory given to install'],
      HELP_ROW,
    ],
  },
  serve: {
    synopsis: 'serve [--socks-port PORT] [--data-port PORT] [--extension-id ID]',
    summary:
      'start by hand and print a pairing code to paste into the extension options (when native messaging ' +
      'is unavailable); runs until Ctrl-C',
    options: [
      ['--socks-port PORT', 'SOCKS5 port on 127.0.0.1 for the browser (default 1080, 0: any free one)'],
      ['--data-port PORT', "the extension's data port on 127.0.0.1 (default 0: any free one)"],
      ['--extension-id ID', 'accept only this Chromium/Chrome extension (32 letters a-p)'],
      HELP_ROW,
    ],
  },
  native: {
    synopsis: 'native ORIGIN',
    summary:
      'run as a native-messaging host on stdin/stdout; the browser does this, with the calling ' +
      "extension's origin (Firefox: the manifest path and the extension id)",
    options: [HELP_ROW],
  },
} as const satisfies Record<string, CommandHelp>;
type Command = keyof typeof COMMANDS;

const isCommand = (name: string): name is Command => Object.hasOwn(COMMANDS, name);

const USAGE = `Usage: ${TOOL} COMMAND [options]

The Underpass companion: the browser's SOCKS proxy into the tunnel. Commands:
${helpTable(
  Object.entries(COMMANDS).map(([name, command]): HelpRow => [name, command.summary]),
  { column: 14 },
)}

Run '${TOOL} COMMAND --help' for a command's options.
`;

function commandUsage(name: Command): string {
  const command = COMMANDS[name];
  const usage = 'Usage: ';
  const synopsis = wrap(`${TOOL} ${command.synopsis}`, HELP_WIDTH - usage.length);
  return `${usage}${synopsis.join(`\n${' '.repeat(usage.length)}`)}

${wrap(command.summary, HELP_WIDTH).join('\n')}

Options:
${helpTable(command.options)}
`;
}

const log = (line: string) => process.stderr.write(`${TOOL}: ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('missing command');
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (!isCommand(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  switch (command) {
    case 'native':
      return native(rest);
    case 'install':
      return install(rest);
    case 'uninstall':
      return uninstall(rest);
    case 'serve':
      return serve(rest);
  }
}

async function native(args: string[]): Promise<number> {
  // The browser's arguments are never these; anything else goes to the host, which answers a bad caller itself.
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    process.stdout.write(commandUsage('native'));
    return EXIT_OK;
  }
  // stdout belongs to the framing: anything printed there by mistake would corrupt the browser's port.
  console.log = console.error;
  console.info = console.error;
  return runNativeHost({ args, input: process.stdin, output: process.stdout, log });
}

/** `--browser` values: every browser for "all" (or none given), else the ones named. */
function browsersFrom(requested: readonly string[] | undefined, command: string): BrowserName[] | 'all' {
  if (requested === undefined || requested.includes('all')) return 'all';
  return requested.map((name) => {
    if (!(BROWSERS as readonly string[]).includes(name))
      throw new UsageError(
        `--browser must be one of ${[...BROWSERS, 'all'].join(', ')}, got "${name}"`,
        command,
      );
    return name as BrowserName;
  });
}

async function install(args: string[]): Promise<number> {
  const command = `${TOOL} install`;
  const { values } = parseFlags(
    {
      args,
      options: {
        browser: { type: 'string', multiple: true },
        'user-data-dir': { type: 'string' },
        'extension-id': { type: 'string', multiple: true },
        help: HELP_OPTION,
      },
    },
    command,
  );
  if (values.help) {
    process.stdout.write(commandUsage('install'));
    return EXIT_OK;
  }
  const requested = browsersFrom(values.browser, command);
  const ids = values['extension-id'] ?? [];
  const userDataDir = values['user-data-dir'];
  if (ids.length === 0) throw new UsageError('install needs --extension-id', command);
  for (const id of ids) {
    if (!isChromeExtensionId(id) && !isFirefoxExtensionId(id))
      throw new UsageError(
        `--extension-id: ${JSON.stringify(id)} is not a Chrome (32 letters a-p) or Firefox (name@domain, {uuid}) id`,
        command,
      );
  }
  const hasFirefoxId = ids.some(isFirefoxExtensionId);
  const hasChromeId = ids.some(isChromeExtensionId);
  if (requested !== 'all') {
    for (const browser of requested) {
      if (browser === 'firefox' ? !hasFirefoxId : !hasChromeId)
        throw new UsageError(
          browser === 'firefox'
            ? '--browser firefox needs a Firefox --extension-id (name@domain or {uuid})'
            : `--browser ${browser} needs a Chrome --extension-id (32 letters a-p)`,
          command,
        );
    }
  }
  const firefox = requested === 'all' ? hasFirefoxId : requested.includes('firefox');
  if (userDataDir !== undefined && firefox)
    throw new UsageError(
      '--user-data-dir is for Chromium and Chrome: Firefox has no per-profile native-messaging hosts ' +
        '(to target a test home, set HOME instead)',
      command,
    );
  const installed = await installNativeHost({
    browsers: requested === 'all' ? [...BROWSERS] : requested,
    userDataDir,
    extensionIds: ids,
    skipBrowsersWithoutIds: requested === 'all',
  });
  for (const host of installed) log(`${host.browser}: ${host.manifestPath}`);
  return EXIT_OK;
}

async function uninstall(args: string[]): Promise<number> {
  const command = `${TOOL} uninstall`;
  const { values } = parseFlags(
    {
      args,
      options: {
        browser: { type: 'string', multiple: true },
        'user-data-dir': { type: 'string' },
        help: HELP_OPTION,
      },
    },
    command,
  );
  if (values.help) {
    process.stdout.write(commandUsage('uninstall'));
    return EXIT_OK;
  }
  const requested = browsersFrom(values.browser, command);
  const browsers = requested === 'all' ? [...BROWSERS] : requested;
  for (const path of await uninstallNativeHost({ browsers, userDataDir: values['user-data-dir'] }))
    log(`removed ${path}`);
  return EXIT_OK;
}

async function serve(args: string[]): Promise<number> {
  const command = `${TOOL} serve`;
  const { values } = parseFlags(
    {
      args,
      options: {
        'socks-port': { type: 'string', default: '1080' },
        'data-port': { type: 'string', default: '0' },
        'extension-id': { type: 'string' },
        help: HELP_OPTION,
      },
    },
    command,
  );
  if (values.help) {
    process.stdout.write(commandUsage('serve'));
    return EXIT_OK;
  }
  const socksPort = parsePort('socks-port', values['socks-port'], command);
  const dataPort = parsePort('data-port', values['data-port'], command);
  const id = values['extension-id'];
  if (id !== undefined && !isChromeExtensionId(id))
    throw new UsageError(
      `--extension-id must be a Chrome extension id (32 letters a-p), got "${id}"`,
      command,
    );
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
  return EXIT_OK;
}

function parsePort(flag: string, text: string, command: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port > 65535)
    throw new UsageError(`--${flag} must be a port from 0 to 65535, got "${text}"`, command);
  return port;
}

runCli(TOOL, () => main(process.argv.slice(2)));
