/**
 * Runs `main.ts` as a subprocess and keeps its JSON log lines (stderr) in memory, for the
 * tests of the proxy and the daemon as real processes.
 *
 * Tests using it need `--allow-run=deno`.
 *
 * @module
 */

import { MAIN, ROOT } from "./cli.ts";

/** One JSON log line (non-JSON lines come as `{msg: "<raw>", raw: true}`). */
export interface LogLine {
  readonly time?: string;
  readonly level?: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A `main.ts` subprocess whose log lines are collected; dispose with `await using`. */
export interface LoggedProcess extends AsyncDisposable {
  /** Its pid. */
  readonly pid: number;
  /** Log lines so far. */
  logs(): LogLine[];
  /** The first log line (past or future) matching `predicate`; rejects after `timeoutMs`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code once it exited and its log is read to the end. */
  readonly exited: Promise<number>;
  /** Sends `signal` (default SIGTERM) unless it exited, and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Options for {@link spawnLogged}. */
export interface LoggedProcessOptions {
  /** What the process is called in error messages (e.g. `"proxy"`). */
  readonly name: string;
  /** The default `timeoutMs` of `waitForLog`. */
  readonly waitTimeoutMs: number;
}

/**
 * Starts `deno run --quiet <flags> main.ts <args>` in the repo root (stdin and stdout null,
 * `NO_COLOR=1`) and collects its stderr as JSON log lines. Does not wait for anything.
 * Disposing sends SIGTERM, then SIGKILL if it has not exited 10 s later.
 *
 * @example
 * ```ts
 * await using daemon = spawnLogged(flags, ["proxy-daemon", "--config", file], {
 *   name: "daemon",
 *   waitTimeoutMs: 15_000,
 * });
 * await daemon.waitForLog((line) => line.msg === "listening");
 * ```
 */
export function spawnLogged(
  flags: readonly string[],
  args: readonly string[],
  options: LoggedProcessOptions,
): LoggedProcess {
  const child = new Deno.Command("deno", {
    args: ["run", "--quiet", ...flags, MAIN, ...args],
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
    const push = (raw: string) => {
      if (raw.trim() === "") return;
      let line: LogLine;
      try {
        line = JSON.parse(raw);
      } catch {
        line = { msg: raw, raw: true };
      }
      lines.push(line);
    };
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let at: number;
      while ((at = rest.indexOf("\n")) >= 0) {
        push(rest.slice(0, at));
        rest = rest.slice(at + 1);
      }
      for (const wake of watchers) wake();
    }
    push(rest);
    for (const wake of watchers) wake();
  })();
  const exited = child.status.then(async (status) => {
    await reading;
    return status.code;
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
    for (const wake of watchers) wake();
  });

  function waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = options.waitTimeoutMs) {
    return new Promise<LogLine>((resolve, reject) => {
      let seen = 0;
      const check = () => {
        for (; seen < lines.length; seen++) {
          if (predicate(lines[seen])) return done(() => resolve(lines[seen]));
        }
        if (gone) {
          done(() =>
            reject(
              new Error(`The ${options.name} exited before the awaited log line. Log:\n${dump()}`),
            )
          );
        }
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new Error(`Timed out after ${timeoutMs} ms waiting for a log line. Log:\n${dump()}`),
            )
          ),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        watchers.delete(check);
        settle();
      };
      watchers.add(check);
      check();
    });
  }

  const dump = () => lines.map((line) => JSON.stringify(line)).join("\n");

  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!gone) {
      try {
        child.kill(signal);
      } catch {
        // Exited in the meantime.
      }
    }
    return await exited;
  };

  return {
    pid: child.pid,
    logs: () => [...lines],
    waitForLog,
    exited,
    stop,
    async [Symbol.asyncDispose]() {
      const timer = setTimeout(() => stop("SIGKILL"), 10_000);
      await stop("SIGTERM");
      clearTimeout(timer);
    },
  };
}
