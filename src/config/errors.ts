/**
 * Configuration errors that say where: file, line, column and field.
 *
 * @module
 */

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** The file, or `environment` for a problem in a `PROXY_GLOBAL_*` override. */
  readonly file: string;
  /** 1-based line, or null when the problem has no position (e.g. an override). */
  readonly line: number | null;
  /** 1-based column, or null when the problem has no position. */
  readonly column: number | null;
  /** Field path such as `services[1].path`, or `""` for the whole document. */
  readonly field: string;
  /** What is wrong, in a short sentence. */
  readonly message: string;
}

/**
 * Formats an issue as `file:line:column field: message`.
 *
 * @example
 * ```ts
 * formatIssue({ file: "proxy.yaml", line: 3, column: 5, field: "global.idle_timeout",
 *   message: "must be at least 1 second(s)" });
 * // "proxy.yaml:3:5 global.idle_timeout: must be at least 1 second(s)"
 * ```
 */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === null ? issue.file : `${issue.file}:${issue.line}:${issue.column}`;
  return issue.field ? `${where} ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** A configuration that cannot be used; carries every issue found, not just the first. */
export class ConfigError extends Error {
  /** All problems, in document order. */
  readonly issues: readonly ConfigIssue[];

  /** @param issues every problem found (at least one). */
  constructor(issues: readonly ConfigIssue[]) {
    super(
      `Invalid configuration (${issues.length} error${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => "  " + formatIssue(i)).join("\n"),
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/**
 * Renders a field path the way users write it: `services[1].volumes./data.bind`.
 *
 * @example
 * ```ts
 * fieldPath(["services", 1, "path"]); // "services[1].path"
 * ```
 */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += (out ? "." : "") + String(part);
  }
  return out;
}
