/**
 * A child process's output: split into lines, kept as a short tail for error reports.
 *
 * @module
 */

/** Longest line kept; longer output is split so one runaway line cannot grow memory. */
const MAX_LINE = 4096;

/**
 * A ring buffer of the last lines a workload printed.
 *
 * @example
 * ```ts
 * const tail = new OutputTail(2);
 * tail.push("a"); tail.push("b"); tail.push("c");
 * tail.text(); // "b\nc"
 * ```
 */
export class OutputTail {
  readonly #lines: string[] = [];
  readonly #capacity: number;
  #next = 0;

  /** @param capacity how many lines to keep (at least 1). */
  constructor(capacity = 50) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`Output tail capacity must be a positive integer, got ${capacity}`);
    }
    this.#capacity = capacity;
  }

  /** Adds a line, dropping the oldest once full. */
  push(line: string): void {
    if (this.#lines.length < this.#capacity) this.#lines.push(line);
    else this.#lines[this.#next] = line;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  /** The kept lines, oldest first, joined by `\n`. */
  text(): string {
    if (this.#lines.length < this.#capacity) return this.#lines.join("\n");
    return [...this.#lines.slice(this.#next), ...this.#lines.slice(0, this.#next)].join("\n");
  }
}

/**
 * Reads a byte stream to its end and calls `onLine` for every line (without `\r\n`; a
 * final unterminated line included). Aborting `signal` cancels the stream and resolves.
 *
 * @example
 * ```ts
 * const child = new Deno.Command("echo", { args: ["hi"], stdout: "piped" }).spawn();
 * await pumpLines(child.stdout, (line) => tail.push(line), AbortSignal.timeout(1000));
 * ```
 */
export async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  let pending = "";
  const emit = (line: string) => {
    const clean = line.endsWith("\r") ? line.slice(0, -1) : line;
    for (let i = 0; i < clean.length || i === 0; i += MAX_LINE) {
      onLine(clean.slice(i, i + MAX_LINE));
    }
  };
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += value;
      let newline: number;
      while ((newline = pending.indexOf("\n")) !== -1) {
        emit(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
      while (pending.length > MAX_LINE) {
        onLine(pending.slice(0, MAX_LINE));
        pending = pending.slice(MAX_LINE);
      }
    }
  } catch {
    // The stream was cancelled or broke: what was read so far is all there is.
  } finally {
    signal.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
  if (pending !== "") emit(pending);
}
