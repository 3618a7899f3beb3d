/** Replaced at build time by wxt.config.ts (from UNDERPASS_SIGNALING_URL). */
declare const __UNDERPASS_DEFAULT_SIGNALING_URL__: string;
/** Replaced at build time by wxt.config.ts (from UNDERPASS_DIRECTORY_KEYS; the development key by default). */
declare const __UNDERPASS_DEFAULT_DIRECTORY_KEYS__: string[];
