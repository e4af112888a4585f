/**
 * Memory sizes as Docker writes them (`512m`, `8g`, `1.5GiB`), in binary units.
 *
 * @module
 */

const FACTORS: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/**
 * Parses a memory size into bytes, or returns `null` when the text is not a size.
 * Units are binary, case-insensitive, with an optional `b`/`ib` suffix.
 *
 * @example
 * ```ts
 * parseMemory("512m"); // 536870912
 * parseMemory("8g");   // 8589934592
 * parseMemory("lots"); // null
 * ```
 */
export function parseMemory(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!match) return null;
  const bytes = Math.floor(Number(match[1]) * FACTORS[match[2].toLowerCase()]);
  return Number.isSafeInteger(bytes) ? bytes : null;
}
