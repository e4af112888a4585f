/**
 * Structured logging: JSON lines on stderr (or a log file). The only module that writes to the console.
 *
 * @module
 */

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const encoder = new TextEncoder();
let threshold = RANK.info;
let sink: { writeSync(p: Uint8Array): number } = Deno.stderr;

/**
 * Sets the lowest level that is written.
 *
 * @example
 * ```ts
 * setLogLevel("debug");
 * ```
 */
export function setLogLevel(level: LogLevel): void {
  threshold = RANK[level];
}

/**
 * Sends log lines to a file instead of stderr (the detached daemon's `--log-file`).
 * Needs `--allow-write` for the file.
 */
export function setLogFile(path: string): void {
  sink = Deno.openSync(path, { append: true, create: true });
}

/** Whether a message at `level` would be written (skip building costly fields when not). */
export function logEnabled(level: LogLevel): boolean {
  return RANK[level] >= threshold;
}

/**
 * Writes one JSON line `{"time","level","msg",...fields}` to stderr. Callers must never
 * pass secrets in `fields`.
 *
 * @example
 * ```ts
 * log("info", "listening", { url: "http://127.0.0.1:8080" });
 * ```
 */
export function log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
  if (RANK[level] < threshold) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
  try {
    let bytes = encoder.encode(line + "\n");
    while (bytes.length > 0) bytes = bytes.subarray(sink.writeSync(bytes));
  } catch {
    // stderr closed: nothing sensible left to do with a log line.
  }
}
