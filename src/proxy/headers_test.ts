import assert from "node:assert/strict";
import { clientAddress, stripHopByHop, upstreamHeaders } from "./headers.ts";
import { TrustedProxies } from "./trusted.ts";

const none = new TrustedProxies([]);
const local = new TrustedProxies(["127.0.0.0/8", "::1"]);

Deno.test("stripHopByHop drops hop-by-hop and Connection-listed headers", () => {
  const out = stripHopByHop(
    new Headers({
      connection: "keep-alive, X-Secret , close",
      "keep-alive": "timeout=5",
      "proxy-connection": "keep-alive",
      te: "trailers",
      trailer: "x-t",
      "transfer-encoding": "chunked",
      upgrade: "h2c",
      "proxy-authenticate": "Basic",
      "proxy-authorization": "Basic abc",
      "x-secret": "1",
      "x-kept": "2",
      "set-cookie": "a=1",
    }),
  );
  out.append("set-cookie", "b=2");
  assert.deepEqual([...out], [["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-kept", "2"]]);
});

Deno.test("upstreamHeaders removes the client's Authorization and Host", () => {
  const source = new Headers({ authorization: "Bearer proxy", host: "a.test", accept: "x/y" });
  const out = upstreamHeaders(
    source,
    { peer: "1.2.3.4", proto: "http", host: "a.test" },
    none,
    null,
  );
  assert.equal(out.get("authorization"), null);
  assert.equal(out.get("host"), null);
  assert.equal(out.get("accept"), "x/y");
});

Deno.test("upstreamHeaders injects the service's own token", () => {
  const source = new Headers({ authorization: "Bearer proxy" });
  const out = upstreamHeaders(source, { peer: "1.2.3.4", proto: "http", host: "a" }, none, "svc");
  assert.equal(out.get("authorization"), "Bearer svc");
});

Deno.test("upstreamHeaders replaces forwarded headers from untrusted peers", () => {
  const source = new Headers({
    "x-forwarded-for": "6.6.6.6",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "evil.test",
    forwarded: "for=6.6.6.6",
  });
  const out = upstreamHeaders(
    source,
    { peer: "1.2.3.4", proto: "http", host: "a.test:8080" },
    none,
    null,
  );
  assert.equal(out.get("x-forwarded-for"), "1.2.3.4");
  assert.equal(out.get("x-forwarded-proto"), "http");
  assert.equal(out.get("x-forwarded-host"), "a.test:8080");
  assert.equal(out.get("forwarded"), 'for=1.2.3.4;host="a.test:8080";proto=http');
});

Deno.test("upstreamHeaders appends to forwarded headers from trusted peers", () => {
  const source = new Headers({
    "x-forwarded-for": "9.9.9.9",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "public.test",
    forwarded: "for=9.9.9.9;proto=https",
  });
  const out = upstreamHeaders(source, { peer: "::1", proto: "http", host: "inner" }, local, null);
  assert.equal(out.get("x-forwarded-for"), "9.9.9.9, ::1");
  assert.equal(out.get("x-forwarded-proto"), "https");
  assert.equal(out.get("x-forwarded-host"), "public.test");
  assert.equal(out.get("forwarded"), 'for=9.9.9.9;proto=https, for="[::1]";host=inner;proto=http');
});

Deno.test("upstreamHeaders writes unknown for a peer without an address", () => {
  const out = upstreamHeaders(
    new Headers({ "x-forwarded-for": "6.6.6.6" }),
    { peer: null, proto: "https", host: "a" },
    none,
    null,
  );
  assert.equal(out.get("x-forwarded-for"), null);
  assert.equal(out.get("forwarded"), "for=unknown;host=a;proto=https");
});

Deno.test("clientAddress believes X-Forwarded-For only from trusted peers", () => {
  assert.equal(clientAddress("5.5.5.5", "1.1.1.1", local), "5.5.5.5");
  assert.equal(clientAddress("127.0.0.1", null, local), "127.0.0.1");
  assert.equal(clientAddress("127.0.0.1", "1.1.1.1", local), "1.1.1.1");
});

Deno.test("clientAddress takes the rightmost untrusted hop", () => {
  assert.equal(clientAddress("127.0.0.1", "6.6.6.6, 1.1.1.1, 127.0.0.2", local), "1.1.1.1");
});

Deno.test("clientAddress takes the leftmost hop when every hop is trusted", () => {
  assert.equal(clientAddress("::1", "127.0.0.5, ::1", local), "127.0.0.5");
});

Deno.test("clientAddress stops at an entry that is not an address", () => {
  assert.equal(clientAddress("127.0.0.1", "1.1.1.1, <script>, 127.0.0.2", local), "127.0.0.2");
  assert.equal(clientAddress("127.0.0.1", "evil", local), "127.0.0.1");
});
