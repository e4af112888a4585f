/**
 * Helpers for the end-to-end tests of `proxy-daemon` and `proxy-status` as subprocesses: free
 * ports, the operator's control flags, a foreground daemon launched with exactly
 * {@link permissionFlags}, and TLS probes that verify a served chain for a name that only
 * resolves in pebble's DNS mock (SNI + hostname check against 127.0.0.1).
 *
 * Tests using them need `--allow-run=deno,ps --allow-net=127.0.0.1
 * --allow-read=.,/tmp --allow-write=/tmp --allow-env`.
 *
 * @module
 */

import type { X509Certificate } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { loadConfig } from "../../src/config/load.ts";
import { permissionFlags } from "../../src/daemon/permissions.ts";
import { ps } from "./fixture_service.ts";
import { type LoggedProcess, spawnLogged } from "./logged_process.ts";

const decoder = new TextDecoder();

/** A random 64-hex-digit bearer token. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A loopback port that was free a moment ago (bind to 0, read, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * The flags an operator gives `proxy-daemon start|stop|status|reload`: read the config folder,
 * write the pid and log files there, run Deno (`Deno.kill` of another process needs
 * `--allow-run` unscoped), env for `${VAR}` in the config.
 */
export function controlFlags(dir: string): string[] {
  return [`--allow-read=${dir}`, `--allow-write=${dir}`, "--allow-run", "--allow-env"];
}

/** What a TLS probe saw. */
export interface TlsProbe {
  /** The served leaf. */
  readonly leaf: X509Certificate;
  /** Its serial, upper-case hex. */
  readonly serial: string;
}

/**
 * Connects to `127.0.0.1:port` with SNI `servername`, verifies the chain against `ca` and the
 * certificate against `servername` (rejects otherwise), and returns the served leaf.
 */
export function probeTls(port: number, servername: string, ca: string): Promise<TlsProbe> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca: [ca] }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.destroy();
      if (!peer) return reject(new Error("no peer certificate"));
      resolve({ leaf: peer, serial: peer.serialNumber.toUpperCase() });
    });
    socket.on("error", reject);
  });
}

/** A raw HTTP/1.1 response. */
export interface RawResponse {
  /** Status code. */
  readonly status: number;
  /** Header names lower-cased. */
  readonly headers: Map<string, string>;
  /** The body as text. */
  readonly body: string;
}

function parseRaw(text: string): RawResponse {
  const end = text.indexOf("\r\n\r\n");
  const head = text.slice(0, end === -1 ? text.length : end).split("\r\n");
  const status = Number(head[0].split(" ")[1]);
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = end === -1 ? "" : text.slice(end + 4);
  if (headers.get("transfer-encoding") === "chunked") {
    let out = "";
    for (let rest = body; rest.length > 0;) {
      const nl = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, nl), 16);
      if (!(size > 0)) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status, headers, body };
}

/** Sends one `Connection: close` HTTP/1.1 request over a plain TCP connection to loopback. */
export async function rawHttp(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const lines = [`GET ${path} HTTP/1.1`, "connection: close"];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
    return parseRaw(await new Response(conn.readable).text());
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by reading to the end.
    }
  }
}

/**
 * The same over TLS to `127.0.0.1:port`, SNI and `Host` = `servername`, chain verified against
 * `ca` (HTTP/1.1: no ALPN offered).
 */
export function rawHttps(
  port: number,
  servername: string,
  ca: string,
  path: string,
  headers: Record<string, string>,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca: [ca] }, () => {
      const lines = [`GET ${path} HTTP/1.1`, `host: ${servername}`, "connection: close"];
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
    });
    socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    socket.on("end", () => {
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      resolve(parseRaw(decoder.decode(all)));
    });
    socket.on("error", reject);
  });
}

/** A foreground `proxy-daemon` subprocess. */
export interface ForegroundDaemon extends LoggedProcess {
  /** The flags it was started with. */
  readonly flags: readonly string[];
}

/**
 * Starts `main.ts proxy-daemon --config <file>` in the foreground with exactly
 * `permissionFlags(config)`; its JSON log lines (stderr) are collected. Does not wait.
 */
export async function startForegroundDaemon(file: string): Promise<ForegroundDaemon> {
  const { config } = await loadConfig(file, {});
  const flags = permissionFlags(config);
  const daemon = spawnLogged(flags, ["proxy-daemon", "--config", file], {
    name: "daemon",
    waitTimeoutMs: 15_000,
  });
  return { ...daemon, flags };
}

/** The pids of `pid`'s direct children (`ps --ppid`); needs `--allow-run=ps`. */
export async function childPids(pid: number): Promise<number[]> {
  const stdout = await ps(["-o", "pid=", "--ppid", String(pid)]);
  return stdout.split("\n").map((s) => Number(s.trim())).filter((n) => n > 0);
}
