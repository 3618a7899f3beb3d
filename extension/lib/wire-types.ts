import { z } from 'zod';
import { DIRECTORY_KEY_TEXT_LENGTH, MAX_DIRECTORY_KEYS, parseDirectoryKeys } from '@underpass/shared/trust';

/** Field types that several contexts' messages share. */

export const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** The directory public keys a path trusts (base64url, 43 characters each), at least one. */
export const directoryKeysSchema = z
  .array(z.string().length(DIRECTORY_KEY_TEXT_LENGTH))
  .min(1)
  .max(MAX_DIRECTORY_KEYS)
  .refine((keys) => parseDirectoryKeys(keys.join(' ')).ok, 'not directory keys');

export const wsUrl = z
  .string()
  .max(2048)
  .refine((value) => /^wss?:\/\//i.test(value), 'must be a ws:// or wss:// URL');
