/**
 * Header rules at the proxy boundary: hop-by-hop filtering in both directions, the forwarded
 * headers upstreams see, and the client address behind trusted proxies.
 *
 * @module
 */

import { parseIp, type TrustedProxies } from "./trusted.ts";

/** Hop-by-hop headers (RFC 9110 §7.6.1 and the usual non-standard ones), lower case. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
]);

/** Characters of an RFC 7230 token: such values need no quotes in `Forwarded`. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A copy of `source` without hop-by-hop headers and without every header named in its
 * `Connection` header. Used for requests going up and responses coming down.
 *
 * @example
 * ```ts
 * stripHopByHop(new Headers({ connection: "x-a", "x-a": "1", "x-b": "2" })); // only x-b
 * ```
 */
export function stripHopByHop(source: Headers): Headers {
  const connection = source.get("connection");
  const listed = connection === null
    ? null
    : new Set(connection.split(",").map((name) => name.trim().toLowerCase()));
  const out = new Headers();
  for (const [name, value] of source) {
    if (!HOP_BY_HOP.has(name) && (listed === null || !listed.has(name))) out.append(name, value);
  }
  return out;
}

/** What the proxy knows about the connection a request came in on. */
export interface Origin {
  /** The peer's IP address, or null when it has none (a Unix socket). */
  readonly peer: string | null;
  /** The scheme the client used to reach this listener. */
  readonly proto: "http" | "https";
  /** The host the client asked for (`Host` or the `:authority`), port included. */
  readonly host: string;
}

/** A `Forwarded` node: IPv6 bracketed and quoted, `unknown` without an address. */
function forwardedNode(ip: string | null): string {
  if (ip === null) return "unknown";
  return ip.includes(":") ? `"[${ip}]"` : ip;
}

/** A `Forwarded` value: a token as is, anything else as a quoted-string. */
function forwardedValue(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/** Sets `X-Forwarded-For/-Proto/-Host` and `Forwarded` for one more hop (see below). */
function setForwarded(headers: Headers, origin: Origin, trusted: TrustedProxies): void {
  const believe = origin.peer !== null && trusted.has(origin.peer);
  const priorFor = believe ? headers.get("x-forwarded-for") : null;
  if (origin.peer !== null) {
    headers.set("x-forwarded-for", priorFor ? `${priorFor}, ${origin.peer}` : origin.peer);
  } else if (priorFor === null) headers.delete("x-forwarded-for");
  if (!believe || !headers.has("x-forwarded-proto")) headers.set("x-forwarded-proto", origin.proto);
  if (!believe || !headers.has("x-forwarded-host")) headers.set("x-forwarded-host", origin.host);
  const element = `for=${forwardedNode(origin.peer)};host=${
    forwardedValue(origin.host)
  };proto=${origin.proto}`;
  const priorForwarded = believe ? headers.get("forwarded") : null;
  headers.set("forwarded", priorForwarded ? `${priorForwarded}, ${element}` : element);
}

/**
 * The headers to send upstream for a client request: hop-by-hop headers dropped, the client's
 * `Authorization` removed (replaced by `Bearer <authToken>` when the service has one), `Host`
 * left to the upstream URL, and `X-Forwarded-For/-Proto/-Host` and RFC 7239 `Forwarded` set.
 * When the peer is a trusted proxy its forwarded headers are kept and this hop appended;
 * otherwise whatever the client sent in them is replaced.
 *
 * @example
 * ```ts
 * const headers = upstreamHeaders(request.headers, { peer: "::1", proto: "http", host: "a.test" },
 *   new TrustedProxies([]), service.auth_token);
 * headers.get("forwarded"); // for="[::1]";host=a.test;proto=http
 * ```
 */
export function upstreamHeaders(
  source: Headers,
  origin: Origin,
  trusted: TrustedProxies,
  authToken: string | null,
): Headers {
  const headers = stripHopByHop(source);
  headers.delete("host");
  if (authToken === null) headers.delete("authorization");
  else headers.set("authorization", `Bearer ${authToken}`);
  setForwarded(headers, origin, trusted);
  return headers;
}

/**
 * The client's address: the peer itself, unless the peer is a trusted proxy; then the
 * rightmost `X-Forwarded-For` entry that is not trusted (walking right to left). An entry that
 * is not an IP address ends the walk at the last trusted hop, so nothing a client wrote
 * unchecked is ever returned.
 *
 * @example
 * ```ts
 * clientAddress("10.0.0.1", "1.2.3.4, 10.0.0.2", new TrustedProxies(["10.0.0.0/8"])); // "1.2.3.4"
 * ```
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | null,
  trusted: TrustedProxies,
): string {
  if (forwardedFor === null || !trusted.has(peer)) return peer;
  const hops = forwardedFor.split(",");
  let address = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i].trim();
    if (parseIp(hop) === null) return address;
    address = hop;
    if (!trusted.has(hop)) return hop;
  }
  return address;
}
