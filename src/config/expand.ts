/**
 * `${VAR}` and `${VAR:-default}` expansion of string values from the environment.
 *
 * @module
 */

const PATTERN = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** The result of expanding one string: the text, and the names of unset variables. */
export interface Expansion {
  /** The expanded text (unset variables without a default expand to `""`). */
  readonly value: string;
  /** Variables that were unset and had no default. */
  readonly missing: readonly string[];
}

/**
 * Expands `${VAR}` and `${VAR:-default}`; `$$` stands for a literal `$`. An empty or unset
 * variable takes the default (as in POSIX shells' `:-`).
 *
 * @example
 * ```ts
 * expand("Bearer ${TOKEN}", { TOKEN: "abc" }).value; // "Bearer abc"
 * expand("${PORT:-8000}", {}).value;                 // "8000"
 * expand("${NOPE}", {}).missing;                     // ["NOPE"]
 * ```
 */
export function expand(text: string, env: Readonly<Record<string, string>>): Expansion {
  if (!text.includes("$")) return { value: text, missing: [] };
  const missing: string[] = [];
  const value = text.replace(PATTERN, (whole, name?: string, fallback?: string) => {
    if (whole === "$$") return "$";
    const found = env[name!];
    if (found !== undefined && (found !== "" || fallback === undefined)) return found;
    if (fallback !== undefined) return fallback;
    missing.push(name!);
    return "";
  });
  return { value, missing };
}
