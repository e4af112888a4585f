/**
 * PEM armour (RFC 7468) for DER blobs, and splitting a chain into its blocks. No permissions.
 *
 * @example
 * ```ts
 * const text = toPem("CERTIFICATE REQUEST", der);
 * const [leaf] = pemBlocks(fullchain, "CERTIFICATE");
 * ```
 *
 * @module
 */

/** Wraps DER bytes as PEM with the given label, 64 characters a line. */
export function toPem(label: string, der: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < der.length; i += 0x8000) {
    binary += String.fromCharCode(...der.subarray(i, i + 0x8000));
  }
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The PEM blocks with `label` in `text`, in order, each with its armour. */
export function pemBlocks(text: string, label: string): string[] {
  const pattern = new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, "g");
  return [...text.matchAll(pattern)].map((m) => m[0] + "\n");
}
