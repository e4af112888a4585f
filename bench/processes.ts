/**
 * Child processes for the benchmark: free loopback ports, spawning with output drained,
 * waiting for a port to accept, and resident memory from `ps`.
 *
 * Needs `--allow-net=127.0.0.1` and `--allow-run` for the programs spawned and `ps`.
 *
 * @module
 */

/** A spawned program that {@link Spawned.stop} ends by its process id. */
export interface Spawned extends AsyncDisposable {
  /** What it is, for error messages. */
  readonly name: string;
  /** The process id. */
  readonly pid: number;
  /** The last 4 KiB it wrote (stdout and stderr). */
  tail(): string;
  /** Sends SIGTERM (SIGKILL after 3 s) and waits for the exit. */
  stop(): Promise<void>;
}

/** Returns a port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/**
 * Spawns `program args` with stdout and stderr drained; the last 4 KiB are kept for errors.
 *
 * @example
 * ```ts
 * await using nginx = spawn("upstream", "nginx", ["-p", dir, "-c", conf]);
 * ```
 */
export function spawn(
  name: string,
  program: string,
  args: string[],
  env?: Record<string, string>,
): Spawned {
  const child = new Deno.Command(program, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const decoder = new TextDecoder();
  const keep = () =>
    new WritableStream<Uint8Array>({
      write(chunk) {
        tail = (tail + decoder.decode(chunk)).slice(-4096);
      },
    });
  const drained = Promise.all([child.stdout.pipeTo(keep()), child.stderr.pipeTo(keep())])
    .catch(() => {});
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }, 3000);
      await child.status;
      clearTimeout(timer);
      await drained;
    })();
  return { name, pid: child.pid, stop, tail: () => tail, [Symbol.asyncDispose]: stop };
}

/**
 * Waits until `child` accepts TCP connections on 127.0.0.1:`port`; throws with its last
 * output after `ms`.
 */
export async function waitForPort(child: Spawned, port: number, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      if (performance.now() > deadline) {
        throw new Error(`${child.name} did not listen on ${port}:\n${child.tail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Resident memory in MiB of `pid` plus its direct children (nginx's workers). */
export async function rssMiB(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid), "--ppid", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const kib = new TextDecoder().decode(stdout).split("\n").map(Number).filter((n) => n > 0);
  return kib.reduce((a, b) => a + b, 0) / 1024;
}
