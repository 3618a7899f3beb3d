/**
 * The user's file selection on an open `torrent` stream, as a BEP 10 extension of the BitTorrent wire
 * between the user's WebTorrent and the exit's: the plain wire cannot say which files a user wants, and the
 * exit fetches from the swarm only what its users selected. The OPEN request carries the first selection;
 * this message replaces it (an empty list: every file). The payload is the JSON text of the list of file
 * indices, sent raw (no bencode needed on either end).
 */
export const SELECTION_EXTENSION = 'underpass_select';

/** More indices than this is not a selection a client would send: the message is ignored. */
export const MAX_SELECTION_LENGTH = 10_000;

/** The part of a bittorrent-protocol wire the extension uses. */
export interface ExtensionWire {
  extended(extension: string, message: Uint8Array): void;
  /** The extensions the far end announced in its extended handshake (name → id). */
  readonly peerExtendedMapping?: Record<string, number>;
}

/** What `wire.use` takes: a class whose prototype has the extension's `name`. */
export type WireExtension = new (wire: ExtensionWire) => { onMessage(message: Uint8Array): void };

export function encodeSelection(files: readonly number[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(files));
}

/** The file indices in a message, or undefined if it is not a list of at most MAX_SELECTION_LENGTH indices. */
export function decodeSelection(message: Uint8Array): number[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(message));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length > MAX_SELECTION_LENGTH) return undefined;
  if (!value.every((index): index is number => Number.isInteger(index) && index >= 0)) return undefined;
  return [...new Set(value)];
}

/** The extension for `wire.use`, calling `onSelect` with each selection the far end sends. */
export function selectionExtension(onSelect: (files: number[]) => void): WireExtension {
  class SelectionExtension {
    onMessage(message: Uint8Array): void {
      const files = decodeSelection(message);
      if (files) onSelect(files);
    }
  }
  // bittorrent-protocol reads the name from the prototype before it constructs the extension.
  Object.defineProperty(SelectionExtension.prototype, 'name', { value: SELECTION_EXTENSION });
  return SelectionExtension;
}

/** Sends a new selection; false if the far end did not announce the extension (nothing is sent). */
export function sendSelection(wire: ExtensionWire, files: readonly number[]): boolean {
  if (!wire.peerExtendedMapping?.[SELECTION_EXTENSION]) return false;
  wire.extended(SELECTION_EXTENSION, encodeSelection(files));
  return true;
}
