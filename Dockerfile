# @nodetool/proxy: the reverse proxy as a container that starts sibling containers on demand.
#
#   docker build -t nodetool/proxy .
#   docker network create nodetool-net
#   docker run -d --name nodetool-proxy --network nodetool-net \
#     -p 80:80 -p 443:443 \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /etc/nodetool/proxy.yaml:/etc/nodetool/proxy.yaml:ro \
#     -v /etc/letsencrypt:/etc/letsencrypt \
#     -v /var/www/acme:/var/www/acme \
#     -e PROXY_BEARER_TOKEN nodetool/proxy
#
# Mounts: the Docker socket (the proxy creates, starts and stops service containers), the
# config at /etc/nodetool/proxy.yaml (or a folder at /etc/nodetool), /etc/letsencrypt
# (certificates: acme.storage_dir, tls_certfile/tls_keyfile), /var/www/acme (acme_webroot, for
# an external certbot). The container joins `docker_network` so that `connect_mode: docker_dns`
# reaches services by container name.
#
# Build arguments:
#   DENO_IMAGE          the Deno base image (deno at /usr/bin/deno, DENO_DIR set).
#   DENO_TLS_CA_STORE   "system" makes `deno install` trust the base image's CA bundle instead
#                       of Deno's built-in roots (behind a TLS-inspecting proxy).

ARG DENO_IMAGE=denoland/deno:2.9.6
FROM ${DENO_IMAGE}

ARG DENO_TLS_CA_STORE=mozilla
WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when deno.json or deno.lock change.
COPY deno.json deno.lock ./
RUN ["deno", "install", "--frozen"]

COPY main.ts ./
COPY src/ src/
COPY docker/ docker/
RUN ["deno", "cache", "--frozen", "main.ts", "docker/launch.ts", "docker/healthcheck.ts"]

ENV NODETOOL_PROXY_CONFIG=/etc/nodetool/proxy.yaml
EXPOSE 80 443

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/bin/deno", "run", "--quiet", "--cached-only", "--frozen", "--allow-read=/etc/nodetool", "--allow-env", "--allow-net=127.0.0.1", "/app/docker/healthcheck.ts"]

# The launcher derives the proxy's permission flags from the config (listeners, loopback, the
# Docker socket, each service's container name, certificate and ACME folders) and runs
# `deno run <flags> main.ts proxy-daemon --config $NODETOOL_PROXY_CONFIG` as its child,
# forwarding SIGTERM (docker stop: drain), SIGINT and SIGHUP (docker kill -s HUP: reload).
# The base image's entrypoint runs `deno` with these arguments (the official one under tini).
# Debug logs: -e PROXY_GLOBAL_LOG_LEVEL=debug.
CMD ["run", "--quiet", "--cached-only", "--frozen", "--allow-read=/etc/nodetool", "--allow-env", "--allow-run=deno", "/app/docker/launch.ts"]
