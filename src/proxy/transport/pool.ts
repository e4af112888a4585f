/**
 * Keep-alive connections per upstream origin: the most recently used idle connection is
 * reused first, at most `maxIdlePerOrigin` idle connections are kept per origin, idle ones
 * are closed after `idleTimeoutMs`, and one that the upstream closes (or sends stray bytes
 * on) while idle is dropped at once. A connection that saw any error is never returned.
 *
 * @module
 */

import { Connection } from "./connection.ts";

/** Limits of a {@link Pool}. */
export interface PoolOptions {
  /** Idle connections kept per origin; more are closed when released. */
  readonly maxIdlePerOrigin: number;
  /** An idle connection older than this is closed. */
  readonly idleTimeoutMs: number;
}

/** Keep-alive connections to upstreams, keyed by `host:port`. */
export class Pool {
  readonly #options: PoolOptions;
  /** Idle connections per key, oldest first. */
  readonly #idle = new Map<string, Connection[]>();
  #idleCount = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #drop = (connection: Connection) => this.#remove(connection);
  readonly #sweep = () => this.#expire(performance.now() - this.#options.idleTimeoutMs);

  /** A pool with the given limits. */
  constructor(options: PoolOptions) {
    this.#options = options;
  }

  /** Number of idle connections across all origins. */
  get idleCount(): number {
    return this.#idleCount;
  }

  /** The most recently parked idle connection for `key`, or null. */
  take(key: string): Connection | null {
    const stack = this.#idle.get(key);
    const connection = stack?.pop();
    if (connection === undefined) return null;
    connection.idle = false;
    this.#counted(-1);
    return connection;
  }

  /** Opens a new connection to `hostname:port`, filed under `key`. Needs `--allow-net`. */
  async connect(key: string, hostname: string, port: number): Promise<Connection> {
    return new Connection(await Deno.connect({ hostname, port }), key, this.#drop);
  }

  /** Parks `connection` for reuse; the oldest idle one of its origin goes when over the limit. */
  release(connection: Connection): void {
    if (connection.closed) return;
    let stack = this.#idle.get(connection.key);
    if (stack === undefined) this.#idle.set(connection.key, stack = []);
    if (stack.length >= this.#options.maxIdlePerOrigin) {
      stack.shift()!.close();
      this.#counted(-1);
    }
    connection.park(performance.now());
    stack.push(connection);
    this.#counted(1);
  }

  /** Closes every idle connection. */
  closeIdle(): void {
    this.#expire(Infinity);
  }

  /** Removes an idle connection that must go, and closes it. */
  #remove(connection: Connection): void {
    const stack = this.#idle.get(connection.key);
    const at = stack?.indexOf(connection) ?? -1;
    connection.close();
    if (at < 0) return;
    stack!.splice(at, 1);
    this.#counted(-1);
  }

  /** Closes idle connections parked before `before`. */
  #expire(before: number): void {
    for (const [key, stack] of this.#idle) {
      let n = 0;
      while (n < stack.length && stack[n].idleSince < before) stack[n++].close();
      if (n === 0) continue;
      stack.splice(0, n);
      if (stack.length === 0) this.#idle.delete(key);
      this.#counted(-n);
    }
  }

  /** Tracks the idle count; the sweep timer runs only while something is idle. */
  #counted(delta: number): void {
    this.#idleCount += delta;
    if (this.#idleCount > 0 && this.#sweeper === undefined) {
      const sweeper = setInterval(this.#sweep, Math.max(250, this.#options.idleTimeoutMs / 4));
      Deno.unrefTimer(sweeper);
      this.#sweeper = sweeper;
    } else if (this.#idleCount === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
