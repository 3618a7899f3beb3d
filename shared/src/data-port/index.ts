// @underpass/shared/data-port: the companion's data port (PROTOCOL.md §4), the same on both of its ends.
export * from './protocol.js';
export * from './mux-link.js';
export * from './bridge.js';
