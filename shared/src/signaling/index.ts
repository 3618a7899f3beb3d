// @underpass/shared/signaling: the broker's wire (schemas, ids, the exit-key proof) and the client of it.
export * from './messages.js';
export * from './ids.js';
export * from './exit-proof.js';
export * from './client.js';
export * from './backoff.js';
export * from './reconnecting-client.js';
