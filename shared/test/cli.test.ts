/** The shared command-line conventions: one-line usage errors from parseArgs, help tables within 100 columns. */
import { describe, expect, it } from 'vitest';
import {
  HELP_OPTION,
  HELP_WIDTH,
  UsageError,
  helpTable,
  parseFlags,
  usageErrorText,
  wrap,
} from '../src/cli.js';

const options = { port: { type: 'string' }, verbose: { type: 'boolean' }, help: HELP_OPTION } as const;

function usageError(args: string[]): UsageError {
  try {
    parseFlags({ args, options, strict: true, allowPositionals: false }, 'tool sub');
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error(`${args.join(' ')} was accepted`);
}

describe('parseFlags', () => {
  it('takes -h and --help alike', () => {
    expect(parseFlags({ args: ['-h'], options }).values.help).toBe(true);
    expect(parseFlags({ args: ['--help'], options }).values.help).toBe(true);
  });

  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['-x'], 'unknown option -x'],
    [['--port'], '--port needs a value'],
    [['--port', '--verbose'], '--port needs a value (write --port=VALUE for one that starts with -)'],
    [['--verbose=yes'], '--verbose takes no value'],
    [['stray'], 'unexpected argument "stray"'],
  ])('%j is a usage error that says %j', (args, message) => {
    const error = usageError(args);
    expect(error.code).toBe('usage');
    expect(error.message).toBe(message);
    expect(error.command).toBe('tool sub');
    expect(usageErrorText('tool', error)).toBe(`tool: ${message}\nRun 'tool sub --help' for usage.\n`);
  });
});

describe('helpTable', () => {
  it('wraps descriptions under their column and never passes 100 columns', () => {
    const long = 'word '.repeat(60).trim();
    const text = helpTable([
      ['--short', 'fits'],
      ['--long-description X', long],
      ['--a-flag-far-too-long-for-the-column VALUE', 'goes on the next line'],
      ['--two-lines', 'first\nsecond'],
    ]);
    const lines = text.split('\n');
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(HELP_WIDTH);
    expect(lines[0]).toBe(`  --short${' '.repeat(21)}fits`);
    expect(lines.filter((line) => line.includes('word')).length).toBeGreaterThan(1);
    const far = lines.indexOf('  --a-flag-far-too-long-for-the-column VALUE');
    expect(lines[far + 1]).toBe(`${' '.repeat(30)}goes on the next line`);
    expect(lines.slice(-2)).toEqual([`  --two-lines${' '.repeat(17)}first`, `${' '.repeat(30)}second`]);
  });

  it('keeps a word longer than the width whole, on its own line', () => {
    expect(wrap(`a ${'x'.repeat(12)} b`, 10)).toEqual(['a', 'x'.repeat(12), 'b']);
  });
});
