// @underpass/shared/trust: directory keys, exit certificates and the client's check of an exit.
export * from './certificate.js';
export * from './directory-key.js';
export * from './exit-trust.js';
export * from './development.js';
