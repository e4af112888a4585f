/**
 * Request path normalisation: the one canonical form that routing and upstreams both see.
 *
 * @module
 */

/** A path already in canonical form: non-empty segments of plain characters, none `.` or `..`. */
const CANONICAL = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9\-._~!$&'()*+,;=:@]+)*\/?$/;

/** Characters left as they are: RFC 3986 `pchar` without `%`. */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

/** RFC 3986 unreserved characters: decoded when percent-encoded. */
const UNRESERVED = /[A-Za-z0-9\-._~]/;

const HEX = "0123456789ABCDEF";

/** Value of one hex digit, or -1. */
function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/** One segment in canonical encoding, or null when it holds a bad escape, NUL or a control. */
function normalizeSegment(segment: string): string | null {
  let out = "";
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i];
    const code = segment.charCodeAt(i);
    if (ch === "%") {
      // A missing or non-hex digit makes `byte` negative; `%00` makes it zero.
      const byte = (hexValue(segment.charCodeAt(i + 1)) << 4) | hexValue(segment.charCodeAt(i + 2));
      if (byte < 1) return null;
      const decoded = String.fromCharCode(byte);
      out += UNRESERVED.test(decoded) ? decoded : "%" + HEX[byte >> 4] + HEX[byte & 15];
      i += 2;
    } else if (PCHAR.test(ch)) {
      out += ch;
    } else if (code <= 0x20 || code === 0x7f) {
      return null;
    } else if (code < 0x80) {
      out += "%" + HEX[code >> 4] + HEX[code & 15];
    } else {
      const width = segment.codePointAt(i)! > 0xffff ? 2 : 1;
      try {
        out += encodeURIComponent(segment.slice(i, i + width));
      } catch {
        return null; // a lone surrogate
      }
      i += width - 1;
    }
  }
  return out;
}

/**
 * Normalises a raw request path (without its query string):
 * percent-encoded unreserved characters are decoded and other escapes upper-cased, dot-segments
 * are removed, duplicate slashes collapsed, and characters outside RFC 3986 `pchar` encoded.
 * An encoded slash (`%2F`) stays encoded, so it never separates segments. A trailing slash is
 * kept. Returns null for a path that must be refused with 400: not starting with `/`, a bad
 * escape, `%00` or a control character.
 *
 * @example
 * ```ts
 * normalizePath("/pub/%2e%2e//priv/./a%2fb"); // "/priv/a%2Fb"
 * normalizePath("/a%zz"); // null
 * ```
 */
export function normalizePath(raw: string): string | null {
  if (raw[0] !== "/") return null;
  if (CANONICAL.test(raw)) return raw;
  const parts = raw.split("/");
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < parts.length; i++) {
    const segment = normalizeSegment(parts[i]);
    if (segment === null) return null;
    trailingSlash = segment === "" || segment === "." || segment === "..";
    if (segment === "..") out.pop();
    else if (!trailingSlash) out.push(segment);
  }
  if (out.length === 0) return "/";
  return "/" + out.join("/") + (trailingSlash ? "/" : "");
}
