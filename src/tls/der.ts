/**
 * A minimal ASN.1 DER encoder (and a reader for walking known structures): just the types a
 * PKCS#10 request, an ECDSA signature and an ARI certificate identifier need.
 *
 * @example
 * ```ts
 * const name = sequence(set(sequence(oid("2.5.4.3"), utf8String("example.com"))));
 * ```
 *
 * @module
 */

/** Encodes a tag, a definite length and the content. */
export function tlv(tag: number, content: Uint8Array): Uint8Array<ArrayBuffer> {
  const length = content.length;
  let header: number[];
  if (length < 0x80) header = [tag, length];
  else {
    const bytes: number[] = [];
    for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    header = [tag, 0x80 | bytes.length, ...bytes];
  }
  const out = new Uint8Array(header.length + length);
  out.set(header);
  out.set(content, header.length);
  return out;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** SEQUENCE of already-encoded elements. */
export function sequence(...elements: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0x30, concat(...elements));
}

/** SET of already-encoded elements (callers pass them in DER order). */
export function set(...elements: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0x31, concat(...elements));
}

/**
 * The content bytes of a non-negative INTEGER given as big-endian magnitude: leading zeros
 * stripped, a 0x00 prepended when the high bit is set.
 */
export function unsignedIntegerContent(magnitude: Uint8Array): Uint8Array<ArrayBuffer> {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  return concat(
    trimmed.length > 0 && trimmed[0] & 0x80 ? new Uint8Array([0]) : new Uint8Array(0),
    trimmed,
  );
}

/** INTEGER from a non-negative big-endian magnitude, or a small number. */
export function integer(value: Uint8Array | number): Uint8Array<ArrayBuffer> {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`Cannot encode integer ${value}: expected a non-negative safe integer`);
    }
    const bytes: number[] = [];
    for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    return tlv(0x02, unsignedIntegerContent(new Uint8Array(bytes.length ? bytes : [0])));
  }
  return tlv(0x02, unsignedIntegerContent(value));
}

/** OBJECT IDENTIFIER from dotted text such as `"1.2.840.10045.4.3.2"`. */
export function oid(dotted: string): Uint8Array<ArrayBuffer> {
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) {
    throw new TypeError(`Cannot encode OID "${dotted}": expected dotted non-negative integers`);
  }
  const bytes = [arcs[0] * 40 + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const groups = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) {
      groups.unshift(0x80 | (n & 0x7f));
    }
    bytes.push(...groups);
  }
  return tlv(0x06, new Uint8Array(bytes));
}

/** UTF8String. */
export function utf8String(text: string): Uint8Array<ArrayBuffer> {
  return tlv(0x0c, new TextEncoder().encode(text));
}

/** OCTET STRING. */
export function octetString(content: Uint8Array): Uint8Array<ArrayBuffer> {
  return tlv(0x04, content);
}

/** BIT STRING with no unused bits. */
export function bitString(content: Uint8Array): Uint8Array<ArrayBuffer> {
  return tlv(0x03, concat(new Uint8Array([0]), content));
}

/** A context-specific tag `[n]`: constructed (explicit/implicit SET, SEQUENCE) or primitive. */
export function contextTag(
  n: number,
  content: Uint8Array,
  constructed: boolean,
): Uint8Array<ArrayBuffer> {
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

/** One decoded element: its tag, its content, and where the next sibling starts. */
export interface DerElement {
  /** The identifier octet (single-byte tags only). */
  tag: number;
  /** The content bytes. */
  content: Uint8Array;
  /** Offset just past this element in the buffer it was read from. */
  end: number;
}

/** Reads the element at `offset` of `der`. Throws `RangeError` on truncated input. */
export function readElement(der: Uint8Array, offset = 0): DerElement {
  if (offset + 2 > der.length) throw new RangeError(`Truncated DER at offset ${offset}`);
  const tag = der[offset];
  let length = der[offset + 1];
  let at = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || at + count > der.length) {
      throw new RangeError(`Unsupported DER length at offset ${offset}`);
    }
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[at + i];
    at += count;
  }
  if (at + length > der.length) throw new RangeError(`Truncated DER at offset ${offset}`);
  return { tag, content: der.subarray(at, at + length), end: at + length };
}

/** The elements directly inside a constructed element's content. */
export function readChildren(content: Uint8Array): DerElement[] {
  const children: DerElement[] = [];
  for (let at = 0; at < content.length;) {
    const element = readElement(content, at);
    children.push(element);
    at = element.end;
  }
  return children;
}
