/**
 * `proxy-validate-config` (alias `validate`): parse and validate without starting anything.
 *
 * @module
 */

import type { Command } from "commander";
import { formatIssue } from "../config/errors.ts";
import { loadConfigOrReport } from "./load_or_report.ts";
import { printErr, printOut } from "./io.ts";
import { summarize } from "./summary.ts";

/**
 * Registers the command. Exit 0 with a summary, 1 with every error on stderr, 2 on usage
 * errors or an unreadable file. Needs `--allow-read` for the file and `--allow-env`.
 */
export function registerValidate(program: Command, setExit: (code: number) => void): void {
  program.command("proxy-validate-config").alias("validate")
    .description("parse and validate a configuration without starting the proxy")
    .requiredOption("-c, --config <file>", "configuration file (proxy.yaml)")
    .action(async (options: { config: string }) => {
      const loaded = await loadConfigOrReport(options.config);
      if (typeof loaded === "number") return setExit(loaded);
      for (const warning of loaded.warnings) printErr("warning: " + formatIssue(warning));
      printOut(summarize(loaded.config));
      setExit(0);
    });
}
