import assert from "node:assert/strict";
import { CertificateStore, writeFileAtomic } from "./store.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeFileAtomic replaces the file with the given mode and leaves no temp file", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/key.pem`, "old", { mode: 0o644 });
    await writeFileAtomic(`${dir}/key.pem`, "new", 0o600);
    assert.equal(await Deno.readTextFile(`${dir}/key.pem`), "new");
    assert.equal((await Deno.stat(`${dir}/key.pem`)).mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["key.pem"]);
  }));

Deno.test("certificates are stored in live/<domain>/ and read back", () =>
  withDir(async (dir) => {
    const store = new CertificateStore(dir, "example.test", "https://ca.test/dir");
    assert.equal(await store.loadCertificate(), null);
    await store.saveCertificate({ cert: "CHAIN", key: "KEY" });
    assert.deepEqual(await store.loadCertificate(), { cert: "CHAIN", key: "KEY" });
    assert.equal(await Deno.readTextFile(`${dir}/live/example.test/fullchain.pem`), "CHAIN");
    assert.equal((await Deno.stat(`${dir}/live/example.test/privkey.pem`)).mode! & 0o777, 0o600);
  }));

Deno.test("the account key is created once (0600) and reused", () =>
  withDir(async (dir) => {
    const store = new CertificateStore(dir, "example.test", "https://ca.test:8443/dir");
    const first = await store.loadOrCreateAccountKey();
    assert.equal(first.existing, false);
    assert.equal(store.accountFile, `${dir}/accounts/ca.test:8443/account.json`);
    assert.equal((await Deno.stat(store.accountFile)).mode! & 0o777, 0o600);
    const again = await store.loadOrCreateAccountKey();
    assert.equal(again.existing, true);
    const jwk = async (k: CryptoKey) => (await crypto.subtle.exportKey("jwk", k)).x;
    assert.equal(await jwk(again.keys.publicKey), await jwk(first.keys.publicKey));
    const data = new TextEncoder().encode("signed");
    const algorithm = { name: "ECDSA", hash: "SHA-256" };
    const signature = await crypto.subtle.sign(algorithm, again.keys.privateKey, data);
    assert.equal(
      await crypto.subtle.verify(algorithm, first.keys.publicKey, signature, data),
      true,
    );
  }));

Deno.test("the renewal lock excludes a second holder and is taken over when stale", () =>
  withDir(async (dir) => {
    const store = new CertificateStore(dir, "example.test", "https://ca.test/dir", 60_000);
    const lock = await store.tryLock();
    assert.ok(lock);
    assert.equal(await store.tryLock(), null, "held by a live process");
    await lock.release();
    {
      await using again = await store.tryLock();
      assert.ok(again, "free after release");
    }
    await Deno.writeTextFile(store.lockFile, `999999 ${Date.now() - 120_000}\n`);
    await using stale = await store.tryLock();
    assert.ok(stale, "a stale lock is taken over");
    assert.match(await Deno.readTextFile(store.lockFile), new RegExp(`^${Deno.pid} `));
  }));

Deno.test("the store refuses a domain that could escape its folder", () => {
  assert.throws(() => new CertificateStore("/x", "../etc", "https://ca.test/dir"), TypeError);
  assert.throws(() => new CertificateStore("/x", "a/b", "https://ca.test/dir"), TypeError);
});
