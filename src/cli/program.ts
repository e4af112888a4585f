/**
 * The command-line program: the original's command names, each with a short alias.
 *
 * @module
 */

import { Command, CommanderError } from "commander";
import { VERSION } from "../version.ts";
import { printErr, printOut } from "./io.ts";
import { registerDaemon } from "./daemon.ts";
import { registerProxy } from "./proxy.ts";
import { registerStatus } from "./status.ts";
import { registerValidate } from "./validate.ts";

/**
 * Runs the CLI on `args` (without the program name) and resolves with the exit code:
 * 0 success, 1 failure, 2 usage error. Never calls `Deno.exit`.
 *
 * @example
 * ```ts
 * const code = await runCli(["proxy-validate-config", "--config", "proxy.yaml"]);
 * ```
 */
export async function runCli(args: readonly string[]): Promise<number> {
  let exitCode = 0;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command("nodetool-proxy")
    .description("Reverse proxy that starts Docker services on demand, with TLS over ACME")
    .version(VERSION, "-V, --version")
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: printOut, writeErr: printErr });
  program.configureHelp({ showGlobalOptions: true });
  registerProxy(program, setExit);
  registerDaemon(program, setExit);
  registerStatus(program, setExit);
  registerValidate(program, setExit);
  for (const command of program.commands) {
    command.exitOverride().configureOutput(program.configureOutput());
  }

  try {
    await program.parseAsync(args as string[], { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // Help and version exit 0; every other commander error is a usage error.
    return error.exitCode === 0 ? 0 : 2;
  }
  return exitCode;
}
