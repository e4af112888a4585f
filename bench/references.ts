/**
 * The reference servers: nginx as the upstream (a fixed 1 KiB response and a 10 MiB file),
 * nginx and caddy as reverse proxies to it. Each gets its own config in a temporary folder
 * and runs in the foreground on a loopback port. Needs `--allow-run=nginx,caddy` and
 * `--allow-write` for the folder.
 *
 * @module
 */

import { join } from "node:path";
import { spawn, type Spawned, waitForPort } from "./processes.ts";

/** Size of the small response. */
export const SMALL_BYTES = 1024;
/** Size of the download. */
export const LARGE_BYTES = 10 * 1024 * 1024;

/** Settings every nginx here shares: one worker, no access log, files inside `dir`. */
function nginxConf(dir: string, server: string): string {
  return `daemon off;
worker_processes 1;
user root;
pid ${join(dir, "nginx.pid")};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  keepalive_requests 1000000;
${server}
}
`;
}

async function startNginx(name: string, dir: string, port: number, server: string) {
  await Deno.mkdir(dir, { recursive: true });
  const conf = join(dir, "nginx.conf");
  await Deno.writeTextFile(conf, nginxConf(dir, server));
  const child = spawn(name, "nginx", ["-p", dir, "-c", conf, "-e", "stderr"]);
  await waitForPort(child, port);
  return child;
}

/**
 * Starts the upstream: `GET /1k` answers 1 KiB, `GET /10m` sends a 10 MiB file.
 *
 * @example
 * ```ts
 * await using upstream = await startUpstream(dir, port);
 * ```
 */
export async function startUpstream(dir: string, port: number): Promise<Spawned> {
  const root = join(dir, "www");
  await Deno.mkdir(root, { recursive: true });
  await Deno.writeFile(join(root, "1k"), new Uint8Array(SMALL_BYTES).fill(0x61));
  await Deno.writeFile(join(root, "10m"), new Uint8Array(LARGE_BYTES).fill(0x62));
  return await startNginx(
    "upstream nginx",
    join(dir, "upstream"),
    port,
    `  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${root};
    sendfile on;
    location / { default_type application/octet-stream; }
  }`,
  );
}

/** Starts nginx as a reverse proxy on `port` to the upstream on `upstreamPort` (keep-alive). */
export async function startNginxProxy(
  dir: string,
  port: number,
  upstreamPort: number,
): Promise<Spawned> {
  return await startNginx(
    "nginx proxy",
    join(dir, "nginx-proxy"),
    port,
    `  upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`,
  );
}

/** Starts caddy as a reverse proxy on `port` to the upstream on `upstreamPort`. */
export async function startCaddy(
  dir: string,
  port: number,
  upstreamPort: number,
): Promise<Spawned> {
  const home = join(dir, "caddy");
  await Deno.mkdir(home, { recursive: true });
  const file = join(home, "Caddyfile");
  await Deno.writeTextFile(
    file,
    `{
  admin off
  auto_https off
}
http://127.0.0.1:${port} {
  reverse_proxy 127.0.0.1:${upstreamPort}
}
`,
  );
  const child = spawn("caddy", "caddy", ["run", "--config", file, "--adapter", "caddyfile"], {
    HOME: home,
    XDG_CONFIG_HOME: home,
    XDG_DATA_HOME: home,
  });
  await waitForPort(child, port);
  return child;
}
