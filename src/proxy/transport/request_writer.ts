/**
 * Writing a request upstream: the request line with the target exactly as given, `Host`,
 * the headers as they are, and the body framed the way the client framed it — its
 * `Content-Length` passed through, otherwise `Transfer-Encoding: chunked` — streamed with
 * backpressure (each chunk is written before the next one is read).
 *
 * @module
 */

import type { Connection } from "./connection.ts";

/** The request has no body: no framing header is sent. */
export const NO_BODY = -1;
/** The body is sent with `Transfer-Encoding: chunked`. */
export const CHUNKED = -2;

const encoder = new TextEncoder();
const LAST_CHUNK = encoder.encode("0\r\n\r\n");
/** The CRLF ending the last data chunk, then the last chunk. */
const END_CHUNKS = encoder.encode("\r\n0\r\n\r\n");

/**
 * The request head as bytes. `framing` is {@link NO_BODY}, {@link CHUNKED} or the body's
 * length (sent as `Content-Length`); `Content-Length` and `Transfer-Encoding` in `headers`
 * are ignored in favour of it. Header values are written byte for byte (Latin-1, as
 * `Headers` holds them); the target is written as UTF-8.
 *
 * @example
 * ```ts
 * encodeHead("GET", "/x?q='", "127.0.0.1:8000", new Headers({ accept: "*\/*" }), NO_BODY);
 * ```
 */
export function encodeHead(
  method: string,
  target: string,
  host: string,
  headers: Headers,
  framing: number,
): Uint8Array {
  let head = `${method} ${target} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const [name, value] of headers) {
    if (name !== "content-length" && name !== "transfer-encoding" && name !== "host") {
      head += `${name}: ${value}\r\n`;
    }
  }
  if (framing === CHUNKED) head += "transfer-encoding: chunked\r\n\r\n";
  else if (framing === NO_BODY) head += "\r\n";
  else head += `content-length: ${framing}\r\n\r\n`;
  const bytes = encoder.encode(head);
  return bytes.length === head.length ? bytes : mixedHead(head, target);
}

/** Slow path for a head with non-ASCII characters: the target as UTF-8, the rest as Latin-1. */
function mixedHead(head: string, target: string): Uint8Array {
  const lineStart = head.indexOf(" ") + 1;
  const prefix = latin1(head.slice(0, lineStart));
  const utf8 = encoder.encode(target);
  const rest = latin1(head.slice(lineStart + target.length));
  const out = new Uint8Array(prefix.length + utf8.length + rest.length);
  out.set(prefix);
  out.set(utf8, prefix.length);
  out.set(rest, prefix.length + utf8.length);
  return out;
}

/** One byte per character (all characters are below U+0100: `Headers` holds byte strings). */
function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * Streams the body from `reader` to `connection`: exactly `framing` bytes, or chunked
 * ({@link CHUNKED}). `first` is a chunk already taken from the reader. Rejects when the
 * body ends short of, or runs past, its length (the connection must then be closed, as
 * the upstream would misread what follows) or the connection fails, after cancelling the
 * body; releases the reader's lock when done.
 */
export async function writeBody(
  connection: Connection,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  framing: number,
  first: Uint8Array | null,
): Promise<void> {
  let left = framing;
  let sizeLine = "";
  try {
    for (let chunk = first;; chunk = null) {
      if (chunk === null) {
        const next = await reader.read();
        if (next.done) break;
        chunk = next.value;
      }
      if (chunk.length === 0) continue;
      if (framing === CHUNKED) {
        // The data goes out as is (no copy); its CRLF leads the next size line.
        await connection.write(encoder.encode(`${sizeLine}${chunk.length.toString(16)}\r\n`));
        sizeLine = "\r\n";
        await connection.write(chunk);
      } else {
        left -= chunk.length;
        if (left < 0) throw new RangeError("The request body is longer than its Content-Length");
        await connection.write(chunk);
      }
    }
    if (framing === CHUNKED) await connection.write(sizeLine === "" ? LAST_CHUNK : END_CHUNKS);
    else if (left !== 0) {
      throw new RangeError("The request body is shorter than its Content-Length");
    }
  } catch (error) {
    reader.cancel(error).catch(ignore);
    throw error;
  }
  reader.releaseLock();
}

function ignore(): void {}
