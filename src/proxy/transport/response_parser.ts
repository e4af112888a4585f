/**
 * Parsing an upstream's response head from bytes, strictly: status line, header fields and
 * body framing per RFC 9112 §6.3. Anything a downstream parser could read differently is a
 * {@link ProtocolError} (the response is never forwarded): `Content-Length` together with
 * `Transfer-Encoding`, differing or invalid `Content-Length`s, a `Transfer-Encoding` other
 * than `chunked`, obs-fold, bare LF, whitespace before a colon, control characters, a
 * `101` nobody asked for, and heads over {@link MAX_HEAD_BYTES}.
 *
 * @module
 */

import { HOP_BY_HOP } from "../headers.ts";

/** Longest response head accepted (status line, fields and the empty line). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Body framing: `Transfer-Encoding: chunked`. */
export const BODY_CHUNKED = -1;
/** Body framing: everything until the upstream closes the connection. */
export const BODY_UNTIL_CLOSE = -2;

/** The upstream broke HTTP/1.1 framing or syntax: answer 502, never forward it. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** A parsed response head. */
export interface ResponseHead {
  /** Status code, 100–599. */
  readonly status: number;
  /** Reason phrase (may be empty). */
  readonly statusText: string;
  /** Header fields without hop-by-hop ones and those named in `Connection`. */
  readonly headers: Headers;
  /** Body length in bytes, {@link BODY_CHUNKED} or {@link BODY_UNTIL_CLOSE}. */
  readonly length: number;
  /** Whether the connection may carry another request once this body is read. */
  readonly keepAlive: boolean;
  /** Bytes the head took, blank line included. */
  readonly size: number;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
/** Byte classes: token characters, and field-value characters (VCHAR, SP, HTAB, obs-text). */
const TCHAR = 1;
const VALUE = 2;
const CLASS = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) CLASS[c] = VALUE;
for (let c = 0x80; c < 0x100; c++) CLASS[c] = VALUE;
CLASS[SP] = CLASS[HTAB] = VALUE;
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  CLASS[c.charCodeAt(0)] |= TCHAR;
}
const HTTP_1 = [72, 84, 84, 80, 47, 49, 46]; // "HTTP/1."
const decoder = new TextDecoder();
/** Field offsets of the head being parsed: name start, name end, value start, value end. */
let offsets = new Int32Array(4 * 64);

/**
 * Parses the response head in `bytes[start, end)`: null when it is not complete yet,
 * a {@link ProtocolError} when it is malformed or longer than {@link MAX_HEAD_BYTES}.
 * `headRequest` marks a response to HEAD (never a body).
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
 * parseHead(bytes, 0, bytes.length, false)?.length; // 2
 * ```
 */
export function parseHead(
  bytes: Uint8Array,
  start: number,
  end: number,
  headRequest: boolean,
): ResponseHead | null {
  const limit = Math.min(end, start + MAX_HEAD_BYTES);
  const head = scan(bytes, start, limit);
  if (head === 0) {
    if (limit < end || end - start >= MAX_HEAD_BYTES) throw new ProtocolError("Head too large");
    return null;
  }
  return build(bytes, start, head, headRequest);
}

/** Bytes scanned by the last {@link scan}: status-line facts and the number of fields. */
let minor = 0;
let status = 0;
let reasonStart = 0;
let reasonEnd = 0;
let fields = 0;
let highBytes = false;

/** Validates the head's syntax and records offsets; returns the end of the head, 0 if incomplete. */
function scan(b: Uint8Array, start: number, end: number): number {
  if (end - start < 12) return checkPrefix(b, start, end);
  for (let i = 0; i < 7; i++) {
    if (b[start + i] !== HTTP_1[i]) throw new ProtocolError("Invalid status line");
  }
  minor = b[start + 7] - 48;
  const d0 = b[start + 9] - 48, d1 = b[start + 10] - 48, d2 = b[start + 11] - 48;
  if (
    (minor !== 0 && minor !== 1) || b[start + 8] !== SP ||
    !(d0 >= 1 && d0 <= 5) || !(d1 >= 0 && d1 <= 9) || !(d2 >= 0 && d2 <= 9)
  ) throw new ProtocolError("Invalid status line");
  status = d0 * 100 + d1 * 10 + d2;
  let p = start + 12;
  highBytes = false;
  if (p >= end) return 0;
  if (b[p] === SP) {
    reasonStart = ++p;
    while (p < end && CLASS[b[p]] & VALUE) if (b[p++] > 0x7f) highBytes = true;
  } else reasonStart = p;
  reasonEnd = p;
  p = lineEnd(b, p, end);
  if (p === 0) return 0;
  fields = 0;
  for (;;) {
    if (p >= end) return 0;
    const c = b[p];
    if (c === CR || c === LF) {
      const next = lineEnd(b, p, end);
      if (next !== 0 && next !== p + 2) throw new ProtocolError("Invalid end of head");
      return next;
    }
    const nameStart = p;
    while (p < end && CLASS[b[p]] & TCHAR) p++;
    if (p >= end) return 0;
    if (b[p] !== COLON) {
      throw new ProtocolError(
        p === nameStart ? "Folded or empty field name" : "Invalid field name",
      );
    }
    if (p === nameStart) throw new ProtocolError("Empty field name");
    const nameEnd = p++;
    while (p < end && (b[p] === SP || b[p] === HTAB)) p++;
    const valueStart = p;
    while (p < end && CLASS[b[p]] & VALUE) if (b[p++] > 0x7f) highBytes = true;
    let valueEnd = p;
    while (valueEnd > valueStart && (b[valueEnd - 1] === SP || b[valueEnd - 1] === HTAB)) {
      valueEnd--;
    }
    p = lineEnd(b, p, end);
    if (p === 0) return 0;
    const at = fields++ * 4;
    if (at + 4 > offsets.length) {
      const grown = new Int32Array(offsets.length * 2);
      grown.set(offsets);
      offsets = grown;
    }
    offsets[at] = nameStart;
    offsets[at + 1] = nameEnd;
    offsets[at + 2] = valueStart;
    offsets[at + 3] = valueEnd;
  }
}

/** While fewer than 12 bytes arrived: throws if they cannot start a status line, else 0. */
function checkPrefix(b: Uint8Array, start: number, end: number): number {
  for (let i = 0; i < 7 && start + i < end; i++) {
    if (b[start + i] !== HTTP_1[i]) throw new ProtocolError("Invalid status line");
  }
  const crlf = b.indexOf(LF, start);
  if (crlf >= 0 && crlf < end) throw new ProtocolError("Invalid status line");
  return 0;
}

/** At `p` a line must end with CRLF: returns the offset after it, 0 if incomplete. */
function lineEnd(b: Uint8Array, p: number, end: number): number {
  if (p >= end) return 0;
  if (b[p] !== CR) {
    throw new ProtocolError(b[p] === LF ? "Bare LF in head" : "Invalid character in head");
  }
  if (p + 1 >= end) return 0;
  if (b[p + 1] !== LF) throw new ProtocolError("CR without LF in head");
  return p + 2;
}

/** Decodes `bytes[start, end)` one byte per character. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, Math.min(end, i + 4096)));
  }
  return text;
}

/**
 * A `Content-Length` value: digits, or a list of equal lengths (`5, 5`: the same header sent
 * twice); -1 when invalid.
 *
 * @example
 * ```ts
 * contentLength("5, 5"); // 5
 * contentLength("5, 6"); // -1
 * ```
 */
export function contentLength(value: string): number {
  let length = -1;
  for (const part of value.split(",")) {
    const digits = part.trim();
    if (digits.length === 0 || digits.length > 15) return -1;
    for (let i = 0; i < digits.length; i++) {
      const d = digits.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return -1;
    }
    const n = Number(digits);
    if (length !== -1 && n !== length) return -1;
    length = n;
  }
  return length;
}

/** Builds the head from the offsets {@link scan} recorded. */
function build(b: Uint8Array, start: number, end: number, headRequest: boolean): ResponseHead {
  if (status === 101) throw new ProtocolError("Unexpected 101 Switching Protocols");
  const text = highBytes ? latin1(b, start, end) : decoder.decode(b.subarray(start, end));
  const names: string[] = [];
  const values: string[] = [];
  let length = -1;
  let chunked = false;
  let close = minor === 0;
  let listed: string[] | null = null;
  for (let i = 0; i < fields; i++) {
    const at = i * 4;
    const name = text.slice(offsets[at] - start, offsets[at + 1] - start).toLowerCase();
    const value = text.slice(offsets[at + 2] - start, offsets[at + 3] - start);
    names.push(name);
    values.push(value);
    if (name === "content-length") {
      const n = contentLength(value);
      if (n < 0 || (length !== -1 && n !== length)) {
        throw new ProtocolError("Invalid or conflicting Content-Length");
      }
      length = n;
    } else if (name === "transfer-encoding") {
      if (chunked || value.toLowerCase() !== "chunked") {
        throw new ProtocolError("Unsupported Transfer-Encoding");
      }
      chunked = true;
    } else if (name === "connection") {
      for (const token of value.toLowerCase().split(",")) {
        const option = token.trim();
        if (option === "close") close = true;
        else if (option === "keep-alive" && minor === 0) close = false;
        (listed ??= []).push(option);
      }
    }
  }
  if (chunked && (length !== -1 || minor === 0)) {
    throw new ProtocolError("Transfer-Encoding with Content-Length or in HTTP/1.0");
  }
  const headers = new Headers();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (!HOP_BY_HOP.has(name) && (listed === null || !listed.includes(name))) {
      headers.append(name, values[i]);
    }
  }
  const empty = headRequest || status < 200 || status === 204 || status === 304;
  const bodyLength = empty ? 0 : chunked ? BODY_CHUNKED : length !== -1 ? length : BODY_UNTIL_CLOSE;
  return {
    status,
    statusText: text.slice(reasonStart - start, reasonEnd - start),
    headers,
    length: bodyLength,
    keepAlive: !close && bodyLength !== BODY_UNTIL_CLOSE,
    size: end - start,
  };
}
