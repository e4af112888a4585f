/**
 * Test certificates made with the `openssl` command: a private CA and leaves it signs.
 *
 * Tests using it need `--allow-run=openssl` and read/write on the directory given.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { join } from "node:path";

/** `openssl req` arguments for a new unencrypted P-256 key. */
export const EC_KEY: readonly string[] = [
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-nodes",
];

/** Runs `openssl <args>` in `cwd` and returns its stdout; throws with its stderr on failure. */
export async function openssl(args: string[], cwd: string): Promise<string> {
  const decoder = new TextDecoder();
  const { code, stdout, stderr } = await new Deno.Command("openssl", {
    args,
    cwd,
    stdin: "null",
  }).output();
  if (code !== 0) throw new Error(`openssl ${args[0]} failed: ${decoder.decode(stderr)}`);
  return decoder.decode(stdout);
}

/** A private CA made by {@link makeCa}. */
export interface TestCa {
  /** Path of the CA certificate (PEM). */
  readonly certFile: string;
  /** Path of its key. */
  readonly keyFile: string;
  /** The CA certificate's PEM text. */
  readonly pem: string;
}

/** Makes a P-256 CA in `dir` (files `<name>.pem`, `<name>.key`). */
export async function makeCa(dir: string, name = "ca"): Promise<TestCa> {
  await openssl([
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name} test CA`,
  ], dir);
  return {
    certFile: join(dir, `${name}.pem`),
    keyFile: join(dir, `${name}.key`),
    pem: await Deno.readTextFile(join(dir, `${name}.pem`)),
  };
}

/** A leaf certificate and key, with its serial (upper-case hex). */
export interface TestLeaf {
  /** Certificate PEM. */
  readonly cert: string;
  /** Key PEM. */
  readonly key: string;
  /** Serial number, upper-case hex (as `certificateInfo` reports it). */
  readonly serial: string;
}

/**
 * Issues a leaf for `sans` (e.g. `["DNS:localhost", "IP:127.0.0.1"]`) signed by `ca`, in
 * `dir` under a fresh name; returns its PEM texts.
 */
export async function makeLeaf(dir: string, ca: TestCa, sans: string[]): Promise<TestLeaf> {
  const id = crypto.randomUUID().slice(0, 8);
  await openssl(
    ["req", ...EC_KEY, "-keyout", `${id}.key`, "-out", `${id}.csr`, "-subj", "/CN=leaf"],
    dir,
  );
  await Deno.writeTextFile(join(dir, `${id}.ext`), `subjectAltName=${sans.join(",")}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${id}.csr`,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-set_serial",
    `0x${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`,
    "-days",
    "2",
    "-extfile",
    `${id}.ext`,
    "-out",
    `${id}.pem`,
  ], dir);
  const cert = await Deno.readTextFile(join(dir, `${id}.pem`));
  const key = await Deno.readTextFile(join(dir, `${id}.key`));
  for (const suffix of ["pem", "key", "csr", "ext"]) {
    await Deno.remove(join(dir, `${id}.${suffix}`));
  }
  return { cert, key, serial: new X509Certificate(cert).serialNumber.toUpperCase() };
}
