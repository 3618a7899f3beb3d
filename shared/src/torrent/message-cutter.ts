/** The BitTorrent handshake after its first byte (pstrlen): pstr, then 8 reserved bytes, the infohash and the peer id. */
const HANDSHAKE_AFTER_PSTR = 8 + 20 + 20;
/** A message's length prefix. */
const LENGTH_BYTES = 4;

/**
 * Cuts a received BitTorrent byte stream (the handshake, then length-prefixed messages) into parts that end at
 * message boundaries, so that the wire that reads them copies less. Why: bittorrent-protocol's wire (5.0.x, as in
 * WebTorrent 3.0.21) keeps the unparsed end of one chunk and, when the next arrives, concatenates the two before
 * parsing: a 60 KiB cell of the tunnel, which holds about three and a half 16 KiB blocks, was copied whole each
 * time, on the user's side for every byte of a download. Given as parts — the end of the message the previous
 * chunk began, then the whole messages, then the start of the next one — the wire concatenates only the message
 * that straddles two chunks.
 *
 * Pure re-chunking: the parts of a chunk, joined, are the chunk, whatever the bytes are (a hostile or encrypted
 * stream only gets cut in the wrong places; the wire judges the messages). Holds at most four bytes of state.
 */
export class MessageCutter {
  /** Bytes left of the handshake or message being read, once its length is known (0: a length comes next). */
  private left = 0;
  private handshake = true;
  /** The length prefix read so far (a prefix may straddle two chunks). */
  private length = 0;
  private lengthBytes = 0;

  /** Whether the stream is at a message boundary (nothing of a message read yet). */
  get atBoundary(): boolean {
    return this.left === 0 && this.lengthBytes === 0;
  }

  /** `chunk` as one to three parts, each but the last ending at a message boundary; empty parts are left out. */
  cut(chunk: Uint8Array): Uint8Array[] {
    const startedAtBoundary = this.atBoundary;
    let first = -1;
    let last = -1;
    let at = 0;
    while (at < chunk.length) {
      if (this.left > 0) {
        const taken = Math.min(this.left, chunk.length - at);
        at += taken;
        this.left -= taken;
        if (this.left === 0) {
          if (first < 0) first = at;
          last = at;
        }
        continue;
      }
      const byte = chunk[at++]!;
      if (this.handshake) {
        this.handshake = false;
        this.left = byte + HANDSHAKE_AFTER_PSTR;
        continue;
      }
      this.length = this.length * 256 + byte;
      if (++this.lengthBytes < LENGTH_BYTES) continue;
      this.left = this.length;
      this.length = 0;
      this.lengthBytes = 0;
      if (this.left === 0) {
        // A keep-alive: the length alone.
        if (first < 0) first = at;
        last = at;
      }
    }
    if (last < 0 || last === chunk.length) {
      // No boundary inside, or the chunk ends at one: the wire takes it whole without a copy of its own
      // unless it began mid-message, and then the copy is of what it holds of that message.
      if (startedAtBoundary || first < 0 || first === chunk.length) return [chunk];
      return [chunk.subarray(0, first), chunk.subarray(first)];
    }
    const parts: Uint8Array[] = [];
    if (!startedAtBoundary && first > 0 && first < last) parts.push(chunk.subarray(0, first));
    const from = parts.length > 0 ? first : 0;
    if (last > from) parts.push(chunk.subarray(from, last));
    parts.push(chunk.subarray(last));
    return parts;
  }
}
