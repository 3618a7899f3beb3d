/**
 * What the command-line tools (underpass-signaling, underpass-exit, underpass-directory, underpass-companion)
 * do the same way: exit codes, `-h`/`--help`, usage errors (what was wrong, then a hint, on stderr, exit 2),
 * runtime errors (exit 1) and help text that fits 100 columns. Node hosts only: the extension never imports it.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UnderpassError, errorMessage } from './errors.js';

/** Done, or the help was asked for. */
export const EXIT_OK = 0;
/** Something failed at run time: a file, a server, the network. */
export const EXIT_FAILURE = 1;
/** The command line was wrong: unknown flag, bad value, missing argument. */
export const EXIT_USAGE = 2;

/** No line of any help text is wider than this. */
export const HELP_WIDTH = 100;

/** The command line was wrong. `command` names the (sub)command whose `--help` would have helped. */
export class UsageError extends UnderpassError {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super('usage', message);
    this.name = 'UsageError';
  }
}

/** `-h`/`--help`, the same on every command and subcommand. */
export const HELP_OPTION = { type: 'boolean', short: 'h' } as const;

/**
 * node:util's parseArgs in strict mode, its errors turned into UsageErrors that say what was wrong in one line
 * (Node's own messages run to three sentences and explain positionals nobody asked about).
 */
export function parseFlags<T extends ParseArgsConfig>(
  config: T,
  command?: string,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>(config);
  } catch (error) {
    throw new UsageError(describeParseError(error), command);
  }
}

function describeParseError(error: unknown): string {
  const message = errorMessage(error);
  const code = (error as { code?: unknown } | null)?.code;
  const quoted = /'([^']*)'/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      if (quoted !== undefined) return `unknown option ${quoted}`;
      break;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      if (quoted !== undefined) return `unexpected argument ${JSON.stringify(quoted)}`;
      break;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      // "Option '-h, --port <value>' argument missing" / "Option '--help' does not take an argument" / ambiguous.
      const flag = quoted?.split(/[ ,]+/).find((part) => part.startsWith('--'));
      if (flag === undefined) break;
      if (message.includes('argument missing')) return `${flag} needs a value`;
      if (message.includes('does not take an argument')) return `${flag} takes no value`;
      if (message.includes('ambiguous'))
        return `${flag} needs a value (write ${flag}=VALUE for one that starts with -)`;
      break;
    }
  }
  return message.split(/[.\n]/)[0] ?? message;
}

export type HelpRow = readonly [usage: string, description: string];

/**
 * Two columns, `usage` then `description`, word-wrapped to HELP_WIDTH; a usage too long for its column puts
 * its description on the next line.
 */
export function helpTable(
  rows: readonly HelpRow[],
  options: { indent?: number; column?: number } = {},
): string {
  const indent = options.indent ?? 2;
  const column = options.column ?? 30;
  const pad = ' '.repeat(column);
  const lines: string[] = [];
  for (const [usage, description] of rows) {
    const head = `${' '.repeat(indent)}${usage}`;
    const wrapped = wrap(description, HELP_WIDTH - column);
    if (head.length + 1 > column || wrapped.length === 0) {
      lines.push(...wrap(usage, HELP_WIDTH - indent).map((line) => ' '.repeat(indent) + line));
      lines.push(...wrapped.map((line) => pad + line));
    } else {
      lines.push(head.padEnd(column) + wrapped[0], ...wrapped.slice(1).map((line) => pad + line));
    }
  }
  return lines.join('\n');
}

/**
 * Words of `text` in lines of at most `width` characters (a single longer word keeps its own line); a newline
 * in `text` always starts a new line.
 */
export function wrap(text: string, width: number): string[] {
  if (text.includes('\n')) return text.split('\n').flatMap((part) => wrap(part, width));
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/[ \t]+/).filter((w) => w !== '')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** How a usage error reads on stderr: what was wrong, then where the help is. */
export function usageErrorText(tool: string, error: UsageError): string {
  return `${tool}: ${error.message}\nRun '${error.command ?? tool} --help' for usage.\n`;
}

/**
 * Runs a tool's main and maps its outcome to the process: a number means done (exit with it), nothing means the
 * tool now serves until a signal; a UsageError exits 2 with a hint, any other error exits 1 with its message.
 */
export function runCli(tool: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      if (code !== undefined) process.exit(code);
    },
    (error: unknown) => {
      if (error instanceof UsageError) {
        process.stderr.write(usageErrorText(tool, error));
        process.exit(EXIT_USAGE);
      }
      process.stderr.write(`${tool}: ${errorMessage(error)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}
