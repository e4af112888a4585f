/**
 * Runs the real CLI as a subprocess with the permission flags a user would give it.
 *
 * @module
 */

/** The repository root (cwd of every subprocess, so deno.json's import map applies). */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
/** Absolute path of main.ts. */
export const MAIN: string = new URL("../../main.ts", import.meta.url).pathname;

/** The flags the README documents for `proxy-validate-config`. */
export const VALIDATE_FLAGS: readonly string[] = ["--allow-read", "--allow-env"];

/** Output of one finished CLI run. */
export interface CliResult {
  /** Process exit code. */
  readonly code: number;
  /** Everything written to stdout. */
  readonly stdout: string;
  /** Everything written to stderr. */
  readonly stderr: string;
}

/**
 * Runs `deno run --quiet <flags> main.ts <args>` in the repo root to completion. Needs
 * `--allow-run=deno`.
 *
 * @example
 * ```ts
 * const { code } = await runCli(VALIDATE_FLAGS, ["validate", "-c", "/tmp/proxy.yaml"]);
 * ```
 */
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
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
