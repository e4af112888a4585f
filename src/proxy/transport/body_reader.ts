/**
 * A response body read off an upstream connection as a pull stream (backpressure: nothing
 * is read until the client side asks): `Content-Length` bytes, `chunked` decoded (chunk
 * extensions ignored, trailers dropped), or everything until the upstream closes. Bad
 * chunk framing or an early close errors the stream.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import {
  BODY_CHUNKED,
  BODY_UNTIL_CLOSE,
  MAX_HEAD_BYTES,
  ProtocolError,
} from "./response_parser.ts";

/** Told once when the body is done: `complete` when it was read to its end without error. */
export interface BodyOwner {
  /** The body ended: read in full (`complete`), or cancelled or failed. */
  end(complete: boolean): void;
}

const CR = 13;
const LF = 10;
/** Longest chunk-size line accepted (extensions included). */
const MAX_CHUNK_LINE = 4096;
/** Largest chunk size accepted: 13 hex digits stay a safe integer. */
const MAX_CHUNK_DIGITS = 13;

/**
 * The source of a response body stream; use with `highWaterMark: 0`.
 *
 * @example
 * ```ts
 * const body = new ReadableStream(new BodySource(connection, head.length, owner), { highWaterMark: 0 });
 * ```
 */
export class BodySource implements UnderlyingDefaultSource<Uint8Array> {
  readonly #connection: Connection;
  readonly #owner: BodyOwner;
  readonly #framing: number;
  /** Bytes left: of the body (`Content-Length`), or of the current chunk. */
  #left: number;

  /** Reads a body framed as `length` (see `ResponseHead.length`) from `connection`. */
  constructor(connection: Connection, length: number, owner: BodyOwner) {
    this.#connection = connection;
    this.#owner = owner;
    this.#framing = length;
    this.#left = length >= 0 ? length : 0;
  }

  /** Enqueues the next piece of the body, or closes the stream at its end. */
  async pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    try {
      const chunk = await this.#next();
      if (chunk !== null) controller.enqueue(chunk);
      if (chunk === null || (this.#framing >= 0 && this.#left === 0)) {
        controller.close();
        this.#owner.end(this.#framing !== BODY_UNTIL_CLOSE);
      }
    } catch (error) {
      this.#owner.end(false);
      controller.error(error);
    }
  }

  /** The client went away: the connection cannot be reused. */
  cancel(): void {
    this.#owner.end(false);
  }

  /** The next body bytes, or null at the end. */
  async #next(): Promise<Uint8Array | null> {
    const connection = this.#connection;
    if (this.#framing === BODY_UNTIL_CLOSE) return await connection.readBody(Infinity);
    if (this.#framing !== BODY_CHUNKED) {
      if (this.#left === 0) return null;
      const bytes = await connection.readBody(this.#left);
      if (bytes === null) throw new ProtocolError("Upstream closed before the body was complete");
      this.#left -= bytes.length;
      return bytes;
    }
    if (this.#left === 0) {
      this.#left = await this.#chunkSize();
      if (this.#left === 0) {
        await this.#trailers();
        return null;
      }
    }
    const bytes = await connection.readBody(this.#left);
    if (bytes === null) throw new ProtocolError("Upstream closed inside a chunk");
    this.#left -= bytes.length;
    if (this.#left === 0) await this.#chunkEnd();
    return bytes;
  }

  /** Reads a chunk-size line; returns the size. */
  async #chunkSize(): Promise<number> {
    const end = await this.#line(MAX_CHUNK_LINE);
    const c = this.#connection;
    const b = c.buffer;
    let size = 0;
    let p = c.start;
    for (; p < end; p++) {
      const x = b[p];
      const digit = x >= 48 && x <= 57
        ? x - 48
        : x >= 97 && x <= 102
        ? x - 87
        : x >= 65 && x <= 70
        ? x - 55
        : -1;
      if (digit < 0) break;
      size = size * 16 + digit;
    }
    const digits = p - c.start;
    if (digits === 0 || digits > MAX_CHUNK_DIGITS) throw new ProtocolError("Invalid chunk size");
    while (p < end && (b[p] === 32 || b[p] === 9)) p++;
    if (p < end && b[p] !== 59) throw new ProtocolError("Invalid chunk size");
    c.start = end + 2;
    return size;
  }

  /** Reads the CRLF after a chunk's data. */
  async #chunkEnd(): Promise<void> {
    const c = this.#connection;
    while (c.buffered < 2) {
      if (!(await c.fill())) throw new ProtocolError("Upstream closed inside a chunk");
    }
    if (c.buffer[c.start] !== CR || c.buffer[c.start + 1] !== LF) {
      throw new ProtocolError("Chunk data not followed by CRLF");
    }
    c.start += 2;
  }

  /** Skips the trailer section up to its empty line. */
  async #trailers(): Promise<void> {
    const c = this.#connection;
    for (let total = 0;;) {
      const end = await this.#line(MAX_HEAD_BYTES - total);
      const length = end - c.start;
      c.start = end + 2;
      if (length === 0) return;
      total += length + 2;
    }
  }

  /** Waits for a CRLF-terminated line at the read position; returns the offset of its CR. */
  async #line(max: number): Promise<number> {
    const c = this.#connection;
    for (let from = c.start;;) {
      const lf = c.buffer.indexOf(LF, from);
      if (lf >= 0 && lf < c.end) {
        if (lf === c.start || c.buffer[lf - 1] !== CR) throw new ProtocolError("Bare LF in chunk");
        return lf - 1;
      }
      if (c.buffered > max) throw new ProtocolError("Chunk line too long");
      from = c.end;
      const offset = c.start;
      if (!(await c.fill())) throw new ProtocolError("Upstream closed inside a chunked body");
      from -= offset - c.start;
    }
  }
}
