import type { ProtectState } from '@underpass/shared/engines';

/** Protect up on a two-hop path, as the engine reports it; the ids are placeholders of the right lengths. */
export const PROTECTED_TWO_HOP: ProtectState = {
  status: 'protected',
  path: {
    mode: 'two-hop',
    linkId: 'l'.repeat(22),
    hop: { peerId: 'r'.repeat(22), role: 'relay' },
    exit: { peerId: 'e'.repeat(22), exitKey: 'k'.repeat(43) },
  },
};
