import { z } from 'zod';

/** Field types that several contexts' messages share. */

export const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const wsUrl = z
  .string()
  .max(2048)
  .refine((value) => /^wss?:\/\//i.test(value), 'must be a ws:// or wss:// URL');
