/**
 * The production shape, in the foreground: an HTTP listener on `listen_http` for ACME
 * challenges and the redirect to HTTPS (or the proxy itself when the redirect is off or there
 * is no TLS), and an HTTPS listener on `listen_https` whose certificate is swapped on renewal
 * without a restart. With ACME and no certificate yet, HTTPS starts when the first arrives.
 *
 * @module
 */

import { createProxy, type Drainable } from "../app.ts";
import type { ProxyConfig } from "../config/schema.ts";
import { log } from "../log.ts";
import { listen, nextShutdownSignal } from "../server.ts";
import { ChallengeStore, createRedirectHandler } from "../tls/challenges.ts";
import { listenTls, type TlsListener } from "../tls/listener.ts";
import type { CertificatePair } from "../tls/store.ts";
import { reloadOnHangup } from "../reload.ts";
import { startTlsSource, type TlsSource } from "./tls_source.ts";

/**
 * Runs until SIGTERM or SIGINT, then drains every listener and stops the services.
 * Permissions: those {@link permissionFlags} derives from the config.
 */
export async function runDaemon(config: ProxyConfig, verbose: boolean): Promise<void> {
  const g = config.global;
  const challenges = new ChallengeStore();
  let tlsSource: TlsSource | null = null;
  const app = await createProxy(config, {
    acmeChallenge: (token) => challenges.get(token),
    certificate: () => tlsSource?.status() ?? null,
  });
  const tlsWanted = g.acme.enabled || g.auto_certbot || g.tls_certfile !== null;
  const redirect = tlsWanted && g.http_redirect_to_https;
  const listeners: Drainable[] = [
    listen(
      { name: "http", hostname: g.listen_host, port: g.listen_http },
      redirect
        ? createRedirectHandler({
          challenges,
          webroot: g.acme_webroot,
          domain: g.domain,
          httpsPort: g.listen_https,
        })
        : app.handler,
    ),
  ];

  let https: TlsListener | null = null;
  const serve = (pair: CertificatePair) => {
    if (https) {
      https.setCertificate(pair).then(
        () => log("info", "certificate swapped"),
        (error) =>
          log("error", "new certificate rejected; keeping the old one", { error: String(error) }),
      );
      return;
    }
    https = listenTls({ hostname: g.listen_host, port: g.listen_https, ...pair }, app.handler);
    listeners.push(https);
  };
  try {
    tlsSource = await startTlsSource(g, challenges, serve);
  } catch (error) {
    log("error", "no certificate: serving HTTP only", { error: String(error) });
  }
  if (tlsSource?.initial) serve(tlsSource.initial);
  else if (tlsSource) log("info", "waiting for the first certificate before starting HTTPS");

  const stopReloading = reloadOnHangup(app, config.source, verbose);
  const signal = await nextShutdownSignal();
  stopReloading();
  log("info", "shutting down", { signal, grace_s: g.shutdown_grace });
  await tlsSource?.close();
  await app.stop(listeners);
}
