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
