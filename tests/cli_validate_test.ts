import assert from "node:assert/strict";
import { runCli, VALIDATE_FLAGS } from "./helpers/cli.ts";

const SEED = new URL("../examples/seed.yaml", import.meta.url).pathname;
const TOKEN = "s3cret-".repeat(6);

Deno.test("validate: the seed config passes with a summary and no secret", async () => {
  const result = await runCli(VALIDATE_FLAGS, ["proxy-validate-config", "--config", SEED], {
    PROXY_BEARER_TOKEN: TOKEN,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /domain: +example\.com/);
  assert.match(result.stdout, /\/ → nodetool-worker: image nodetool:latest/);
  assert.match(result.stdout, /certificate files/);
  assert.ok(!result.stdout.includes(TOKEN) && !result.stderr.includes(TOKEN));
});

Deno.test("validate: an invalid config exits 1 with every error on stderr", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/bad.yaml`;
    await Deno.writeTextFile(
      file,
      "global:\n  bearer_token: x\n  idle_timout: 3\nservices:\n  - name: ok\n    path: /\n",
    );
    const result = await runCli(VALIDATE_FLAGS, ["validate", "-c", file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bad\.yaml:3:3 global\.idle_timout: unknown key/);
    assert.match(result.stderr, /bad\.yaml:5:5 services\[0\]: needs one of image, command or url/);
    assert.equal(result.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate: usage errors and unreadable files exit 2", async () => {
  const missingFlag = await runCli(VALIDATE_FLAGS, ["validate"]);
  assert.equal(missingFlag.code, 2);
  assert.match(missingFlag.stderr, /required option/);
  const missingFile = await runCli(VALIDATE_FLAGS, ["validate", "-c", "/nonexistent.yaml"]);
  assert.equal(missingFile.code, 2);
  assert.match(missingFile.stderr, /not found: \/nonexistent\.yaml/);
  const unknown = await runCli(VALIDATE_FLAGS, ["no-such-command"]);
  assert.equal(unknown.code, 2);
});

Deno.test("help and version exit 0 and name every alias", async () => {
  const help = await runCli(VALIDATE_FLAGS, ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /proxy-validate-config\|validate/);
  const version = await runCli(VALIDATE_FLAGS, ["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const commandHelp = await runCli(VALIDATE_FLAGS, ["validate", "--help"]);
  assert.equal(commandHelp.code, 0);
  assert.match(commandHelp.stdout, /--config <file>/);
});
