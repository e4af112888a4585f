/**
 * Demultiplexing of Docker's stdout/stderr log stream: frames of an 8-byte header
 * (`[stream, 0, 0, 0, size as uint32 big-endian]`) followed by `size` bytes of payload.
 *
 * @module
 */

/** One demultiplexed piece of container output. */
export interface LogFrame {
  readonly stream: "stdin" | "stdout" | "stderr";
  readonly data: Uint8Array;
}

const STREAMS = ["stdin", "stdout", "stderr"] as const;

/**
 * Splits a multiplexed log stream into frames; frames split across reads are reassembled.
 *
 * @example
 * ```ts
 * for await (const frame of demux(res.body!)) {
 *   if (frame.stream === "stderr") errors.push(new TextDecoder().decode(frame.data));
 * }
 * ```
 */
export async function* demux(body: ReadableStream<Uint8Array>): AsyncGenerator<LogFrame> {
  let pending = new Uint8Array(0);
  for await (const chunk of body) {
    const merged = new Uint8Array(pending.byteLength + chunk.byteLength);
    merged.set(pending);
    merged.set(chunk, pending.byteLength);
    pending = merged;
    while (pending.byteLength >= 8) {
      const size = new DataView(pending.buffer, pending.byteOffset).getUint32(4);
      if (pending.byteLength < 8 + size) break;
      const stream = STREAMS[pending[0]];
      if (stream === undefined) throw new TypeError(`Invalid log stream id ${pending[0]}`);
      yield { stream, data: pending.slice(8, 8 + size) };
      pending = pending.subarray(8 + size);
    }
  }
  if (pending.byteLength > 0) throw new TypeError("Log stream ended inside a frame");
}
