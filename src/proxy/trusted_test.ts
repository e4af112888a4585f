import assert from "node:assert/strict";
import { parseIp, TrustedProxies } from "./trusted.ts";

Deno.test("parseIp reads v4, v6, brackets, ports and zones", () => {
  assert.deepEqual(parseIp("10.1.2.3"), parseIp("::ffff:10.1.2.3"));
  assert.deepEqual(parseIp("10.1.2.3:8080"), parseIp("10.1.2.3"));
  assert.deepEqual(parseIp("[::1]:80"), parseIp("::1"));
  assert.deepEqual(parseIp("fe80::1%eth0"), parseIp("fe80::1"));
  assert.deepEqual([...parseIp("1:2:3:4:5:6:7:8")!], [
    0,
    1,
    0,
    2,
    0,
    3,
    0,
    4,
    0,
    5,
    0,
    6,
    0,
    7,
    0,
    8,
  ]);
  assert.deepEqual(parseIp("::ffff:1.2.3.4"), parseIp("::ffff:102:304"));
  assert.equal(parseIp("::1")![15], 1);
  assert.deepEqual([...parseIp("2001:db8::")!.subarray(0, 4)], [0x20, 0x01, 0x0d, 0xb8]);
});

Deno.test("parseIp refuses what is not an address", () => {
  for (
    const text of [
      "",
      "unknown",
      "1.2.3",
      "1.2.3.256",
      "01.2.3.4",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "[::1",
      "_hidden",
    ]
  ) {
    assert.equal(parseIp(text), null, text);
  }
});

Deno.test("TrustedProxies matches v4 CIDR blocks, including v4-mapped peers", () => {
  const trusted = new TrustedProxies(["10.0.0.0/8", "192.168.1.128/25", "127.0.0.1"]);
  assert.ok(trusted.has("10.200.3.4"));
  assert.ok(trusted.has("::ffff:10.200.3.4"));
  assert.ok(trusted.has("192.168.1.200"));
  assert.ok(!trusted.has("192.168.1.127"));
  assert.ok(trusted.has("127.0.0.1"));
  assert.ok(!trusted.has("127.0.0.2"));
  assert.ok(!trusted.has("11.0.0.1"));
  assert.ok(!trusted.has("garbage"));
});

Deno.test("TrustedProxies matches v6 CIDR blocks and single addresses", () => {
  const trusted = new TrustedProxies(["::1", "fd00::/8", "2001:db8:abcd::/48"]);
  assert.ok(trusted.has("::1"));
  assert.ok(!trusted.has("::2"));
  assert.ok(trusted.has("fdff:1::5"));
  assert.ok(!trusted.has("fe00::1"));
  assert.ok(trusted.has("2001:db8:abcd:ffff::1"));
  assert.ok(!trusted.has("2001:db8:abce::1"));
  assert.ok(!trusted.has("10.0.0.1"));
});

Deno.test("TrustedProxies with no entries trusts nothing", () => {
  const trusted = new TrustedProxies([]);
  assert.ok(trusted.empty);
  assert.ok(!trusted.has("127.0.0.1"));
});

Deno.test("TrustedProxies refuses malformed entries", () => {
  for (const entry of ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x"]) {
    assert.throws(() => new TrustedProxies([entry]), TypeError, entry);
  }
});
