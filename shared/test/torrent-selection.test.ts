import { describe, expect, it } from 'vitest';
import {
  MAX_SELECTION_LENGTH,
  SELECTION_EXTENSION,
  decodeSelection,
  encodeSelection,
  selectionExtension,
  sendSelection,
  type ExtensionWire,
} from '@underpass/shared/torrent';

describe('the selection extension', () => {
  it('round-trips a selection and rejects anything that is not a list of file indices', () => {
    expect(decodeSelection(encodeSelection([2, 0, 2]))).toEqual([2, 0]);
    expect(decodeSelection(encodeSelection([]))).toEqual([]);
    for (const bad of [
      '{"files":[1]}',
      '[1.5]',
      '[-1]',
      '["1"]',
      'not json',
      JSON.stringify(new Array(MAX_SELECTION_LENGTH + 1).fill(0)),
    ]) {
      expect(decodeSelection(new TextEncoder().encode(bad)), bad).toBeUndefined();
    }
  });

  it('is a wire extension by name, and sends only to a far end that announced it', () => {
    const Extension = selectionExtension((files) => received.push(files));
    const received: number[][] = [];
    expect((Extension.prototype as { name?: string }).name).toBe(SELECTION_EXTENSION);
    const sent: Uint8Array[] = [];
    const wire = (mapping: Record<string, number>): ExtensionWire => ({
      peerExtendedMapping: mapping,
      extended: (_name, message) => sent.push(message),
    });
    const handler = new Extension(wire({}));
    expect(sendSelection(wire({}), [1])).toBe(false);
    expect(sendSelection(wire({ [SELECTION_EXTENSION]: 3 }), [1, 4])).toBe(true);
    handler.onMessage(sent[0]!);
    handler.onMessage(new TextEncoder().encode('garbage'));
    expect(received).toEqual([[1, 4]]);
  });
});
