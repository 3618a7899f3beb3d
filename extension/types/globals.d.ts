/** Replaced at build time by wxt.config.ts (from UNDERPASS_SIGNALING_URL). */
declare const __UNDERPASS_DEFAULT_SIGNALING_URL__: string;
