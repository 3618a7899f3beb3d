import type { MessageKey } from '../../lib/i18n';
import type { RefusalReason } from './protect-messages';

/** Each refusal reason's sentence in the locale files: every code the exit or the kill switch can give. */
export const REFUSAL_WORDS: Readonly<Record<RefusalReason, MessageKey>> = {
  'policy-denied': 'refusalPolicyDenied',
  'dns-failed': 'refusalDnsFailed',
  refused: 'refusalRefused',
  timeout: 'refusalTimeout',
  unreachable: 'refusalUnreachable',
  limit: 'refusalLimit',
  reset: 'refusalReset',
  protocol: 'refusalProtocol',
  'session-closed': 'refusalSessionClosed',
  'torrents-off': 'refusalTorrentsOff',
  'metadata-timeout': 'refusalMetadataTimeout',
  'too-large': 'refusalTooLarge',
  'no-path': 'refusalNoPath',
};
