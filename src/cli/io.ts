/**
 * Terminal output for CLI commands (user-facing text, not logs).
 *
 * @module
 */

const encoder = new TextEncoder();

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** Writes text to stdout, adding a final newline when missing. */
export function printOut(text: string): void {
  writeAll(Deno.stdout, text.endsWith("\n") ? text : text + "\n");
}

/** Writes text to stderr, adding a final newline when missing. */
export function printErr(text: string): void {
  writeAll(Deno.stderr, text.endsWith("\n") ? text : text + "\n");
}
