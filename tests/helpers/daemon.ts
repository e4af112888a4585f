/**
 * Helpers for the end-to-end tests of `proxy-daemon` and `proxy-status` as subprocesses: free
 * ports, openssl-made certificates, the CLI with explicit permission flags, a foreground daemon
 * launched with exactly {@link permissionFlags}, and TLS probes that verify a served chain for
 * a name that only resolves in pebble's DNS mock (SNI + hostname check against 127.0.0.1).
 *
 * Tests using them need `--allow-run=deno,ps,openssl --allow-net=127.0.0.1
 * --allow-read=.,/tmp --allow-write=/tmp --allow-env`.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { permissionFlags } from "../../src/daemon/permissions.ts";

/** The repository root (cwd of every subprocess, so deno.json's import map applies). */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
/** Absolute path of main.ts. */
export const MAIN: string = new URL("../../main.ts", import.meta.url).pathname;
/** Absolute path of the fixture upstream. */
export const FIXTURE_APP: string = new URL("../fixtures/http_app.ts", import.meta.url).pathname;

const decoder = new TextDecoder();

/** The argv of a `command:` service running the fixture app. */
export function fixtureCommand(...flags: string[]): string[] {
  return [
    "deno",
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    "--allow-env=PORT,HOST",
    FIXTURE_APP,
    ...flags,
  ];
}

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

/** Output of one finished CLI run. */
export interface CliResult {
  /** Process exit code. */
  readonly code: number;
  /** Everything written to stdout. */
  readonly stdout: string;
  /** Everything written to stderr. */
  readonly stderr: string;
}

/** Runs `deno run --quiet <flags> main.ts <args>` in the repo root to completion. */
export async function runCli(
  flags: readonly string[],
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const output = await new Deno.Command("deno", {
    args: ["run", "--quiet", ...flags, MAIN, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * The flags an operator gives `proxy-daemon start|stop|status|reload`: read the config folder,
 * write the pid and log files there, run Deno (`Deno.kill` of another process needs
 * `--allow-run` unscoped), env for `${VAR}` in the config.
 */
export function controlFlags(dir: string): string[] {
  return [`--allow-read=${dir}`, `--allow-write=${dir}`, "--allow-run", "--allow-env"];
}

/** Runs `openssl <args>` in `cwd`; throws with its stderr on failure. */
export async function openssl(args: string[], cwd: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("openssl", {
    args,
    cwd,
    stdin: "null",
  }).output();
  if (code !== 0) throw new Error(`openssl ${args[0]} failed: ${decoder.decode(stderr)}`);
  return decoder.decode(stdout);
}

/** A private CA made by {@link makeCa}. */
export interface TestCa {
  /** Path of the CA certificate (PEM). */
  readonly certFile: string;
  /** Path of its key. */
  readonly keyFile: string;
  /** The CA certificate's PEM text. */
  readonly pem: string;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** Makes a P-256 CA in `dir` (files `<name>.pem`, `<name>.key`). */
export async function makeCa(dir: string, name = "ca"): Promise<TestCa> {
  await openssl([
    "req",
    "-x509",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name} test CA`,
  ], dir);
  return {
    certFile: join(dir, `${name}.pem`),
    keyFile: join(dir, `${name}.key`),
    pem: await Deno.readTextFile(join(dir, `${name}.pem`)),
  };
}

/** A leaf certificate and key, with its serial (upper-case hex). */
export interface TestLeaf {
  /** Certificate PEM. */
  readonly cert: string;
  /** Key PEM. */
  readonly key: string;
  /** Serial number, upper-case hex (as `certificateInfo` reports it). */
  readonly serial: string;
}

/**
 * Issues a leaf for `sans` (e.g. `["DNS:localhost", "IP:127.0.0.1"]`) signed by `ca`, in
 * `dir` under a fresh name; returns its PEM texts.
 */
export async function makeLeaf(dir: string, ca: TestCa, sans: string[]): Promise<TestLeaf> {
  const id = crypto.randomUUID().slice(0, 8);
  await openssl(
    ["req", ...EC, "-keyout", `${id}.key`, "-out", `${id}.csr`, "-subj", "/CN=leaf"],
    dir,
  );
  await Deno.writeTextFile(join(dir, `${id}.ext`), `subjectAltName=${sans.join(",")}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${id}.csr`,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-set_serial",
    `0x${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`,
    "-days",
    "2",
    "-extfile",
    `${id}.ext`,
    "-out",
    `${id}.pem`,
  ], dir);
  const cert = await Deno.readTextFile(join(dir, `${id}.pem`));
  const key = await Deno.readTextFile(join(dir, `${id}.key`));
  for (const suffix of ["pem", "key", "csr", "ext"]) {
    await Deno.remove(join(dir, `${id}.${suffix}`));
  }
  return { cert, key, serial: new X509Certificate(cert).serialNumber.toUpperCase() };
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

/** One JSON log line of the daemon. */
export interface LogLine {
  readonly level?: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A foreground `proxy-daemon` subprocess. */
export interface ForegroundDaemon extends AsyncDisposable {
  /** Its pid. */
  readonly pid: number;
  /** The flags it was started with. */
  readonly flags: readonly string[];
  /** Log lines so far. */
  logs(): LogLine[];
  /** The first line (past or future) matching `predicate`; rejects after `timeoutMs`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code once it exited. */
  readonly exited: Promise<number>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/**
 * Starts `main.ts proxy-daemon --config <file>` in the foreground with exactly
 * `permissionFlags(config)`; its JSON log lines (stderr) are collected. Does not wait.
 */
export async function startForegroundDaemon(file: string): Promise<ForegroundDaemon> {
  const { config } = await loadConfig(file, {});
  const flags = permissionFlags(config);
  const child = new Deno.Command("deno", {
    args: ["run", "--quiet", ...flags, MAIN, "proxy-daemon", "--config", file],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: LogLine[] = [];
  const watchers = new Set<() => void>();
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const raw of parts) {
        if (raw.trim() === "") continue;
        try {
          lines.push(JSON.parse(raw));
        } catch {
          lines.push({ msg: raw, raw: true });
        }
      }
      for (const w of watchers) w();
    }
  })();
  const exited = child.status.then(async (s) => {
    await reading;
    for (const w of watchers) w();
    return s.code;
  });
  let done = false;
  exited.then(() => done = true);
  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 15_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = lines.find(predicate);
        if (found) {
          cleanup();
          resolve(found);
        } else if (done) {
          cleanup();
          reject(
            new Error(`daemon exited; log:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `log line not seen in ${timeoutMs} ms; log:\n${
              lines.map((l) => JSON.stringify(l)).join("\n")
            }`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      watchers.add(check);
      check();
    });
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
    return await exited;
  };
  return {
    pid: child.pid,
    flags,
    logs: () => [...lines],
    waitForLog,
    exited,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** The pids of `pid`'s direct children (`ps --ppid`); needs `--allow-run=ps`. */
export async function childPids(pid: number): Promise<number[]> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "pid=", "--ppid", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  return decoder.decode(stdout).split("\n").map((s) => Number(s.trim())).filter((n) => n > 0);
}

/**
 * Whether a process is gone: `ps` does not list it, or only as a zombie (the sandbox's init
 * may not reap orphans). Needs `--allow-run=ps`.
 */
export async function processGone(pid: number): Promise<boolean> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "stat=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const state = decoder.decode(stdout).trim();
  return state === "" || state.startsWith("Z");
}

/** Polls `check` every 50 ms until true; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
