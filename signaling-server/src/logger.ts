/**
 * The logging surface the server needs; a pino logger satisfies it. Log fields carry peer ids and roles, and
 * addresses only when the operator turns on `logAddresses` (`--log-addresses`): the signaling server sees who
 * asks, and by default must not write it down.
 */
export interface SignalingLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const silentLogger: SignalingLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
