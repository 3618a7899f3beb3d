/** The companion's programmatic API, for e2e tests, benchmarks and `npm start`. */
export { startCompanion, generateSecret, Companion } from './companion.js';
export type { CompanionOptions, CompanionStats, CompanionEvents } from './companion.js';
export { SocksServer, NoTunnelError } from './socks-server.js';
export type { SocksServerOptions, SocksStats, OpenStream } from './socks-server.js';
export { DataPort } from './data-port.js';
export type { DataPortOptions } from './data-port.js';
export {
  installNativeHost,
  uninstallNativeHost,
  manifestDirectory,
  hostManifest,
  HOST_NAME,
  type BrowserName,
  type InstallOptions,
  type InstalledHost,
} from './install.js';
export { encodeNativeMessage, type InboundMessage, type OutboundMessage } from './native-messaging.js';
