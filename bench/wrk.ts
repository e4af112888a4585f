/**
 * Runs `wrk` and reads its summary: requests per second, latency percentiles, bytes per
 * second and errors. Needs `--allow-run=wrk`.
 *
 * @module
 */

/** One wrk run's figures. */
export interface WrkResult {
  /** Requests per second. */
  readonly rps: number;
  /** Median latency in milliseconds. */
  readonly p50Ms: number;
  /** 99th percentile latency in milliseconds. */
  readonly p99Ms: number;
  /** Bytes read per second. */
  readonly bytesPerSec: number;
  /** Non-2xx/3xx responses plus socket errors. */
  readonly errors: number;
}

/** What to run. */
export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  readonly headers?: Record<string, string>;
}

const TIME_UNIT: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, m: 60_000 };
const SIZE_UNIT: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

function field(text: string, pattern: RegExp): RegExpExecArray {
  const match = pattern.exec(text);
  if (match === null) throw new Error(`Unexpected wrk output (no ${pattern}):\n${text}`);
  return match;
}

function latency(text: string, percentile: string): number {
  const [, value, unit] = field(
    text,
    new RegExp(`^\\s+${percentile}%\\s+([\\d.]+)(us|ms|s|m)$`, "m"),
  );
  return Number(value) * TIME_UNIT[unit];
}

/**
 * Parses wrk's `--latency` report.
 *
 * @example
 * ```ts
 * parseWrk(stdout).rps; // 60246.8
 * ```
 */
export function parseWrk(text: string): WrkResult {
  const [, transfer, unit] = field(text, /^Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)$/m);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket === null ? 0 : socket.slice(1).map(Number).reduce((a, b) => a + b);
  return {
    rps: Number(field(text, /^Requests\/sec:\s+([\d.]+)$/m)[1]),
    p50Ms: latency(text, "50"),
    p99Ms: latency(text, "99"),
    bytesPerSec: Number(transfer) * SIZE_UNIT[unit],
    errors: Number(non2xx?.[1] ?? 0) + socketErrors,
  };
}

/**
 * Runs one thread of wrk for `seconds` and calls `midway` halfway through (to sample memory
 * under load); resolves with the figures and what `midway` returned.
 */
export async function runWrk<T>(
  options: WrkOptions,
  midway: () => Promise<T>,
): Promise<{ result: WrkResult; sample: T }> {
  const args = [
    "-t1",
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    "--latency",
    "--timeout",
    "10s",
  ];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    args.push("-H", `${name}: ${value}`);
  }
  args.push(options.url);
  const child = new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).spawn();
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 500));
  const sample = await midway();
  const output = await child.output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`wrk failed: ${new TextDecoder().decode(output.stderr)}${text}`);
  }
  return { result: parseWrk(text), sample };
}
