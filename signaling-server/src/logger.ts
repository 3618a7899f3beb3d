/**
 * The old name of the shared Logger (shared/src/logger.ts), kept only because bench/protect/run.ts still
 * imports it from here; new code imports `Logger` from shared.
 */
export type { Logger as SignalingLogger } from '../../shared/src/logger.js';
