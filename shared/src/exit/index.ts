// @underpass/shared/exit: the exit engine, its limits and its address policy. Only exit nodes import this, so
// none of it reaches the browser bundle.
export * from './exit-engine.js';
export * from './exit-limits.js';
export * from './exit-policy.js';
export * from './ip.js';
