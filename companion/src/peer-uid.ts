import { readFile } from 'node:fs/promises';

/** Finds the uid that owns the far end of an accepted loopback TCP connection; undefined when not known. */
export type PeerUidLookup = (clientPort: number, serverPort: number) => Promise<number | undefined>;

/** The kernel's socket tables: a loopback connection has an entry for each end, with its owner's uid. */
const PROC_TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];
/** TCP_ESTABLISHED in the `st` column. */
const ESTABLISHED = '01';

/**
 * Linux: the uid of the process that owns the client end of a connection to our port, read from
 * /proc/net/tcp{,6} — the row whose local port is the client's and remote port is ours. Ports alone identify it
 * on loopback (the server's own row has them the other way round). Undefined off Linux or when no row matches.
 */
export const procPeerUid: PeerUidLookup = async (clientPort, serverPort) => {
  const local = `:${clientPort.toString(16).toUpperCase().padStart(4, '0')}`;
  const remote = `:${serverPort.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of PROC_TABLES) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue; // no /proc (not Linux), or no IPv6
    }
    for (const line of text.split('\n')) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
      if (fields.length < 8 || fields[3] !== ESTABLISHED) continue;
      if (!fields[1]!.endsWith(local) || !fields[2]!.endsWith(remote)) continue;
      const uid = Number(fields[7]);
      if (Number.isSafeInteger(uid)) return uid;
    }
  }
  return undefined;
};
