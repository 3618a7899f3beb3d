// @underpass/shared/engines: the client (Protect) and relay (Volunteer) engines, the parts that run in the browser.
export * from './client.js';
export * from './protect.js';
export * from './relay.js';
export * from './exit-lookups.js';
export * from './relay-outbox.js';
export * from './volunteer.js';
export * from './load-reporter.js';
export * from './refusal-log.js';
export * from './round-trip.js';
export * from './path-service.js';
