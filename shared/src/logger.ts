/**
 * The one logging surface of every Node host (signaling server, exit node): a message and a few structured
 * fields, at four levels. A pino logger satisfies it as it is. Fields carry ids, roles and codes; a peer's
 * address only where the operator asked for it (`--log-addresses`).
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/**
 * Readable lines on the console for people watching a local run (`npm start`, the e2e servers): the message
 * and the fields as JSON, behind `[prefix]`. Operators get JSON lines from pino instead.
 */
export function consoleLogger(prefix: string): Logger {
  const write = (fields: LogFields, message: string) =>
    console.log(`[${prefix}] ${message}`, Object.keys(fields).length > 0 ? JSON.stringify(fields) : '');
  return { debug: () => {}, info: write, warn: write, error: write };
}
