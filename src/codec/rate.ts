import { CodecError } from './errors.js';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const RATE = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgt])(i)?)?\s*(B)?\s*(?:\/\s*s(?:ec)?)?$/i;

/**
 * Parses a bandwidth limit into bytes per second. K, M, G, T are 1024-based whether or not the
 * "i" is written, as in rsync's --bwlimit: "500K" = 512000, "1.5MiB/s" = 1572864. A trailing
 * "B" means bytes; a lower-case "b" (bits) is refused rather than silently misread.
 */
export function parseRate(input: string | number): number {
  if (typeof input === 'number') return checked(input, String(input));
  const text = input.trim();
  const m = RATE.exec(text);
  if (!m || (m[4] !== undefined && m[4] !== 'B')) throw invalidRate(input);
  const value = Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? 1);
  return checked(value, input);
}

function checked(value: number, input: string): number {
  const bytes = Math.floor(value);
  if (!Number.isFinite(value) || bytes < 1 || bytes > Number.MAX_SAFE_INTEGER) throw invalidRate(input);
  return bytes;
}

function invalidRate(input: string | number): CodecError {
  return new CodecError(
    'InvalidRate',
    `invalid rate "${input}": give bytes per second as a number with an optional K, M or G suffix (1024-based, like rsync --bwlimit), e.g. 800K, 10M or 1.5MiB/s`,
  );
}
