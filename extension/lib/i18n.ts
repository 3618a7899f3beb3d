import browser from 'webextension-polyfill';
import english from '../public/_locales/en/messages.json';

/** Every UI string lives in the extension's locale files; this is their key set. */
export type MessageKey = keyof typeof english;

/**
 * The browser's translation for `key`, with `$1`… filled from `substitutions`. Falls back to the English
 * file where there is no i18n API (unit tests) or the key is missing from a partial translation.
 */
export function t(key: MessageKey, ...substitutions: string[]): string {
  let text = '';
  try {
    text = browser.i18n.getMessage(key, substitutions);
  } catch {
    text = '';
  }
  if (text) return text;
  const entry: { message: string; placeholders?: Record<string, { content: string }> } = english[key];
  return entry.message.replace(/\$([A-Z_]+)\$/g, (_match, name: string) => {
    const content = entry.placeholders?.[name.toLowerCase()]?.content ?? '';
    const index = Number(content.slice(1)) - 1;
    return substitutions[index] ?? '';
  });
}
