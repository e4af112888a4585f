import assert from "node:assert/strict";
import { ChallengeStore, createRedirectHandler } from "./challenges.ts";

const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo;

Deno.test("the HTTP handler answers published challenges and 404s unknown ones", async () => {
  const challenges = new ChallengeStore();
  challenges.publish("tok-1", "tok-1.thumb");
  const handler = createRedirectHandler({ challenges, domain: "example.test" });
  const hit = await handler(
    new Request("http://example.test/.well-known/acme-challenge/tok-1"),
    info,
  );
  assert.equal(hit.status, 200);
  assert.equal(await hit.text(), "tok-1.thumb");
  challenges.unpublish("tok-1");
  const gone = await handler(
    new Request("http://example.test/.well-known/acme-challenge/tok-1"),
    info,
  );
  assert.equal(gone.status, 404);
  await gone.body?.cancel();
  const traversal = await handler(
    new Request("http://example.test/.well-known/acme-challenge/..%2F..%2Fetc%2Fpasswd"),
    info,
  );
  assert.equal(traversal.status, 404);
  await traversal.body?.cancel();
});

Deno.test("the HTTP handler serves certbot's webroot files", async () => {
  const webroot = await Deno.makeTempDir({ prefix: "webroot-" });
  try {
    await Deno.mkdir(`${webroot}/.well-known/acme-challenge`, { recursive: true });
    await Deno.writeTextFile(`${webroot}/.well-known/acme-challenge/abc`, "abc.xyz");
    const handler = createRedirectHandler({
      challenges: new ChallengeStore(),
      webroot,
      domain: "d",
    });
    const response = await handler(new Request("http://d/.well-known/acme-challenge/abc"), info);
    assert.equal(await response.text(), "abc.xyz");
  } finally {
    await Deno.remove(webroot, { recursive: true });
  }
});

Deno.test("everything else is a 308 to https with path and query kept", async () => {
  const handler = createRedirectHandler({
    challenges: new ChallengeStore(),
    domain: "example.test",
  });
  const redirect = async (url: string, host: string | null, httpsPort?: number) => {
    const h = httpsPort
      ? createRedirectHandler({
        challenges: new ChallengeStore(),
        domain: "example.test",
        httpsPort,
      })
      : handler;
    const headers = host === null ? undefined : { host };
    const response = await h(new Request(url, { method: "POST", headers }), info);
    assert.equal(response.status, 308);
    return response.headers.get("location");
  };
  assert.equal(
    await redirect("http://x/a/b?c=1&d", "app.example.test:8080"),
    "https://app.example.test/a/b?c=1&d",
  );
  assert.equal(await redirect("http://x/", "bad host/evil"), "https://example.test/");
  assert.equal(
    await redirect("http://x/p?q", "example.test", 8443),
    "https://example.test:8443/p?q",
  );
});
