import { randomBytes } from 'node:crypto';
import { DataPort } from './data-port.js';
import { SocksServer } from './socks-server.js';
import { Emitter } from '@underpass/shared/emitter';

export interface CompanionOptions {
  /** 0 or absent: a free port. */
  socksPort?: number;
  /** 0 or absent: a free port. */
  dataPort?: number;
  /** `chrome-extension://ID/`: only this origin may open the data port. Absent: any extension origin. */
  extensionOrigin?: string;
  /** The data port's secret; absent: 32 random bytes, base64url. Tests may fix it. */
  secret?: string;
}

export interface CompanionStats {
  /** An authenticated extension connection is up. */
  tunnel: boolean;
  /** SOCKS client connections open now. */
  connections: number;
  /** SOCKS client connections since start. */
  total: number;
  /** CONNECTs refused because no tunnel was up (the kill switch at work). */
  blocked: number;
  /**
   * CONNECTs whose stream failed for another reason: the open rejected, or a stream accepted early closed with
   * the exit's refusal before any byte came back (SocksStats.failed).
   */
  failed: number;
}

export type CompanionEvents = {
  tunnel: [up: boolean];
};

/** A running companion: the SOCKS5 endpoint and the data port, joined. */
export class Companion extends Emitter<CompanionEvents> {
  constructor(
    private readonly socks: SocksServer,
    private readonly data: DataPort,
    readonly secret: string,
  ) {
    super();
    data.on('tunnel', (up) => this.emit('tunnel', up));
  }

  get socksPort(): number {
    return this.socks.port;
  }

  get dataPort(): number {
    return this.data.port;
  }

  stats(): CompanionStats {
    const socks = this.socks.stats();
    return {
      tunnel: this.data.tunnelUp,
      connections: socks.connections,
      total: socks.total,
      blocked: socks.blocked,
      failed: socks.failed,
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.socks.close(), this.data.close()]);
  }
}

export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Starts both servers on 127.0.0.1; rejects (with nothing left listening) if either port cannot be bound. */
export async function startCompanion(options: CompanionOptions = {}): Promise<Companion> {
  const secret = options.secret ?? generateSecret();
  const data = new DataPort({
    secret,
    port: options.dataPort ?? 0,
    extensionOrigin: options.extensionOrigin,
  });
  const socks = new SocksServer({
    port: options.socksPort ?? 0,
    openStream: (request) => data.open(request),
  });
  try {
    await data.listen();
    await socks.listen();
  } catch (error) {
    await Promise.all([socks.close(), data.close()]);
    throw error;
  }
  return new Companion(socks, data, secret);
}
