/**
 * `proxy-status` (alias `status`): query a running proxy's `/proxy/status`.
 *
 * Permissions: `--allow-net=<proxy host:port>`, `--allow-env=PROXY_BEARER_TOKEN` and, with
 * `--config` or `--ca-cert`, `--allow-read` for those files (plus `--allow-env` for variables the
 * config names).
 *
 * @module
 */

import type { Command } from "commander";
import type { StatusDocument } from "../status/document.ts";
import { renderStatusTable } from "../status/table.ts";
import { printErr, printOut } from "./io.ts";
import { loadConfigOrReport } from "./load_or_report.ts";

interface StatusOptions {
  serverUrl?: string;
  bearerToken?: string;
  config?: string;
  json?: boolean;
  follow?: boolean;
  interval: string;
  caCert?: string;
}

/** Resolves the status URL: a bare origin gets `/proxy/status` appended. */
export function statusUrl(server: string): URL {
  const url = new URL(server);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/proxy/status";
  return url;
}

/**
 * Registers the command. Exit 0 ok; 1 unreachable or rejected (one-line reason); 2 usage.
 */
export function registerStatus(program: Command, setExit: (code: number) => void): void {
  program.command("proxy-status").alias("status")
    .description("show the state of every service of a running proxy")
    .option("--server-url <url>", "status URL or origin, e.g. https://example.com/proxy/status")
    .option("--bearer-token <token>", "bearer token (default: $PROXY_BEARER_TOKEN)")
    .option(
      "-c, --config <file>",
      "read the token and the address (https://<domain> behind a redirect) from a proxy.yaml",
    )
    .option("--json", "print the raw JSON document")
    .option("--follow", "redraw until interrupted")
    .option("--interval <seconds>", "refresh interval for --follow", "2")
    .option("--ca-cert <file>", "PEM CA certificate to trust (private CA)")
    .action(async (options: StatusOptions) => setExit(await status(options)));
}

async function status(options: StatusOptions): Promise<number> {
  let server = options.serverUrl;
  let token = options.bearerToken ?? Deno.env.get("PROXY_BEARER_TOKEN");
  if (options.config) {
    const loaded = await loadConfigOrReport(options.config);
    if (typeof loaded === "number") return loaded;
    const g = loaded.config.global;
    token ??= g.bearer_token;
    // Where plain HTTP only redirects to HTTPS, ask the HTTPS listener by its certificate's
    // name; otherwise the HTTP listener on this host.
    const tls = g.acme.enabled || g.auto_certbot || g.tls_certfile !== null;
    const host = ["0.0.0.0", "::", ""].includes(g.listen_host) ? "127.0.0.1" : g.listen_host;
    server ??= tls && g.http_redirect_to_https
      ? `https://${g.domain}:${g.listen_https}`
      : `http://${host.includes(":") ? `[${host}]` : host}:${g.listen_http}`;
  }
  if (!server) return usage("give --server-url or --config");
  if (!token) return usage("give --bearer-token, PROXY_BEARER_TOKEN or --config");
  const interval = Number(options.interval);
  if (!(interval > 0)) {
    return usage(`--interval must be a positive number, got "${options.interval}"`);
  }
  let url: URL;
  try {
    url = statusUrl(server);
  } catch {
    return usage(`not a URL: "${server}"`);
  }
  const client = options.caCert
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(options.caCert)] })
    : undefined;
  try {
    do {
      const result = await fetchStatus(url, token, client);
      if (typeof result === "string") {
        printErr(`error: ${result}`);
        if (!options.follow) return 1;
      } else if (options.json) printOut(JSON.stringify(result, null, 2));
      else printOut((options.follow ? "\x1b[H\x1b[2J" : "") + renderStatusTable(result));
      if (options.follow) await new Promise((r) => setTimeout(r, interval * 1000));
    } while (options.follow);
    return 0;
  } finally {
    client?.close();
  }
}

/** Fetches the document, or returns a one-line reason it could not. */
async function fetchStatus(
  url: URL,
  token: string,
  client: Deno.HttpClient | undefined,
): Promise<StatusDocument | string> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
      client,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    return `${url.origin} unreachable: ${reason(error)}`;
  }
  if (!response.ok) {
    await response.body?.cancel();
    return `${url.href} answered ${response.status} ${response.statusText}` +
      (response.status === 401 ? " (wrong or missing bearer token)" : "");
  }
  try {
    return await response.json() as StatusDocument;
  } catch {
    return `${url.href} did not answer with a status document`;
  }
}

function reason(error: unknown): string {
  const text = error instanceof Error
    ? (error.cause instanceof Error ? error.cause.message : error.message)
    : String(error);
  if (/refused/i.test(text)) return "connection refused";
  if (/certificate|tls|ssl/i.test(text)) return `TLS error: ${text}`;
  if (/timed out|timeout/i.test(text)) return "timed out";
  return text.split("\n")[0];
}

function usage(message: string): number {
  printErr(`error: ${message}`);
  return 2;
}
