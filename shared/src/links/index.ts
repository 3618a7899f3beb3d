// @underpass/shared/links: what moves messages between two peers (the Link contract and its kinds), its
// backpressure rule, and the connector that makes WebRTC links through the broker.
export * from './link.js';
export * from './backpressure.js';
export * from './peer-link.js';
export * from './link-keepalive.js';
export * from './link-goodbye.js';
export * from './peer-connector.js';
export * from './memory-link.js';
export * from './throttled-link.js';
export * from './websocket-link.js';
export * from './striped-link.js';
export * from './lane-signals.js';
