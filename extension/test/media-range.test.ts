import { describe, expect, it } from 'vitest';
import { parseRange } from '../features/downloads/media-range';

describe('parseRange', () => {
  const size = 1000;

  it('serves the whole file without a Range header or with one it does not understand', () => {
    expect(parseRange(undefined, size)).toEqual({ kind: 'whole' });
    expect(parseRange('', size)).toEqual({ kind: 'whole' });
    expect(parseRange('items=0-5', size)).toEqual({ kind: 'whole' });
    expect(parseRange('bytes=0-5,10-20', size)).toEqual({ kind: 'whole' });
    expect(parseRange('bytes=-', size)).toEqual({ kind: 'whole' });
    expect(parseRange('bytes=9-3', size)).toEqual({ kind: 'whole' });
    expect(parseRange('bytes=a-3', size)).toEqual({ kind: 'whole' });
    expect(parseRange(`bytes=0-${'9'.repeat(300)}`, size)).toEqual({ kind: 'whole' });
  });

  it('reads one range, clamping its end to the file', () => {
    expect(parseRange('bytes=0-', size)).toEqual({ kind: 'part', start: 0, end: 999 });
    expect(parseRange('bytes=0-0', size)).toEqual({ kind: 'part', start: 0, end: 0 });
    expect(parseRange('bytes=100-199', size)).toEqual({ kind: 'part', start: 100, end: 199 });
    expect(parseRange('bytes=900-5000', size)).toEqual({ kind: 'part', start: 900, end: 999 });
    expect(parseRange('Bytes = 5 - 6', size)).toEqual({ kind: 'part', start: 5, end: 6 });
    expect(parseRange('bytes=999-', size)).toEqual({ kind: 'part', start: 999, end: 999 });
  });

  it('reads a suffix range as the last bytes', () => {
    expect(parseRange('bytes=-10', size)).toEqual({ kind: 'part', start: 990, end: 999 });
    expect(parseRange('bytes=-5000', size)).toEqual({ kind: 'part', start: 0, end: 999 });
  });

  it('refuses a range no byte satisfies', () => {
    expect(parseRange('bytes=1000-', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=1000-2000', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});
