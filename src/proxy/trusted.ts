/**
 * IP address and CIDR matching for `trusted_proxies`, IPv4 and IPv6 alike.
 *
 * @module
 */

/** An address as 16 bytes; IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`). */
type Address = Uint8Array;

/** Parses dotted-quad IPv4 into `out` at `offset`; false when malformed. */
function parseV4(text: string, out: Uint8Array, offset: number): boolean {
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const part = parts[i];
    if (!/^\d{1,3}$/.test(part) || (part.length > 1 && part[0] === "0")) return false;
    const value = Number(part);
    if (value > 255) return false;
    out[offset + i] = value;
  }
  return true;
}

/** Parses `groups` (hex groups, the last possibly dotted IPv4) into 16-bit words; null if bad. */
function parseGroups(text: string): number[] | null {
  if (text === "") return [];
  const words: number[] = [];
  const groups = text.split(":");
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i];
    if (i === groups.length - 1 && group.includes(".")) {
      const v4 = new Uint8Array(4);
      if (!parseV4(group, v4, 0)) return null;
      words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(group)) {
      words.push(parseInt(group, 16));
    } else return null;
  }
  return words;
}

/** Parses IPv6 text (no brackets, no zone); null when malformed. */
function parseV6(text: string): Address | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0]);
  const tail = halves.length === 2 ? parseGroups(halves[1]) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  words.forEach((word, i) => {
    out[2 * i] = word >> 8;
    out[2 * i + 1] = word & 0xff;
  });
  return out;
}

/**
 * Parses an IP address as found in a socket address or an `X-Forwarded-For` entry: IPv4,
 * IPv6 (optionally `[bracketed]`, with a `:port` after v4 or a bracketed v6, and a `%zone`).
 * Returns 16 bytes (IPv4 as IPv4-mapped IPv6) or null when it is not an address.
 *
 * @example
 * ```ts
 * parseIp("[::1]:8080"); // Uint8Array(16) […, 1]
 * parseIp("unknown"); // null
 * ```
 */
export function parseIp(text: string): Address | null {
  let host = text.trim();
  if (host[0] === "[") {
    const end = host.indexOf("]");
    if (end < 0) return null;
    host = host.slice(1, end);
  } else {
    // One colon is IPv4 with a port; bare IPv6 has at least two.
    const colon = host.indexOf(":");
    if (colon >= 0 && colon === host.lastIndexOf(":")) host = host.slice(0, colon);
  }
  const zone = host.indexOf("%");
  if (zone >= 0) host = host.slice(0, zone);
  if (!host.includes(":")) {
    const out = new Uint8Array(16);
    out[10] = out[11] = 0xff;
    return parseV4(host, out, 12) ? out : null;
  }
  return parseV6(host);
}

/** Whether an address holds an IPv4-mapped IPv6 address. */
function isMappedV4(address: Address): boolean {
  for (let i = 0; i < 10; i++) if (address[i] !== 0) return false;
  return address[10] === 0xff && address[11] === 0xff;
}

/** One compiled network. */
interface Network {
  readonly base: Address;
  readonly bits: number;
}

/** Whether `address` lies in `net`. */
function contains(net: Network, address: Address): boolean {
  const whole = net.bits >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== net.base[i]) return false;
  const rest = net.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[whole] & mask) === (net.base[whole] & mask);
}

/**
 * The set of trusted proxy networks, compiled once from `trusted_proxies` entries such as
 * `"10.0.0.0/8"`, `"::1"` or `"fd00::/8"`. IPv4 entries also match IPv4-mapped IPv6 peers.
 *
 * @example
 * ```ts
 * const trusted = new TrustedProxies(["10.0.0.0/8", "::1"]);
 * trusted.has("10.1.2.3"); // true
 * trusted.has("::ffff:10.1.2.3"); // true
 * trusted.has("192.168.0.1"); // false
 * ```
 */
export class TrustedProxies {
  readonly #networks: readonly Network[];

  /** @throws {TypeError} when an entry is not an IP address or CIDR block. */
  constructor(entries: readonly string[]) {
    this.#networks = entries.map((entry) => {
      const slash = entry.indexOf("/");
      const base = parseIp(slash < 0 ? entry : entry.slice(0, slash));
      const prefix = slash < 0 ? null : entry.slice(slash + 1);
      if (base === null || (prefix !== null && !/^\d{1,3}$/.test(prefix))) {
        throw new TypeError(`Invalid trusted proxy ${JSON.stringify(entry)}`);
      }
      const v4 = isMappedV4(base) && !entry.includes(":");
      const max = v4 ? 32 : 128;
      const bits = prefix === null ? max : Number(prefix);
      if (bits > max) throw new TypeError(`Invalid prefix length in ${JSON.stringify(entry)}`);
      return { base, bits: v4 ? bits + 96 : bits };
    });
  }

  /** Whether no network is trusted (then forwarded headers from clients are never believed). */
  get empty(): boolean {
    return this.#networks.length === 0;
  }

  /** Whether `ip` (any form {@link parseIp} accepts) is in a trusted network. */
  has(ip: string): boolean {
    if (this.#networks.length === 0) return false;
    const address = parseIp(ip);
    return address !== null && this.#networks.some((net) => contains(net, address));
  }
}
