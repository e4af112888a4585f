import assert from "node:assert/strict";
import {
  BODY_CHUNKED,
  BODY_UNTIL_CLOSE,
  contentLength,
  MAX_HEAD_BYTES,
  parseHead,
  ProtocolError,
} from "./response_parser.ts";

const encoder = new TextEncoder();

function parse(text: string, headRequest = false) {
  const bytes = encoder.encode(text);
  return parseHead(bytes, 0, bytes.length, headRequest);
}

Deno.test("parseHead reads status, reason, headers and the head's size", () => {
  const text = "HTTP/1.1 201 Created Now\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
    "X-Space:   padded  \r\nContent-Length: 2\r\n\r\nok";
  const head = parse(text)!;
  assert.equal(head.status, 201);
  assert.equal(head.statusText, "Created Now");
  assert.equal(head.headers.get("x-a"), "1");
  assert.equal(head.headers.get("x-space"), "padded");
  assert.deepEqual(head.headers.getSetCookie(), ["a=1", "b=2"]);
  assert.equal(head.length, 2);
  assert.equal(head.keepAlive, true);
  assert.equal(head.size, text.length - 2);
});

Deno.test("parseHead waits for the rest of an incomplete head", () => {
  for (
    const partial of ["HTTP/1.", "HTTP/1.1 200", "HTTP/1.1 200 OK\r", "HTTP/1.1 200 OK\r\nA: b\r\n"]
  ) {
    assert.equal(parse(partial), null, JSON.stringify(partial));
  }
  assert.equal(parse("HTTP/1.1 204\r\n\r\n")?.status, 204);
});

Deno.test("parseHead frames bodies per RFC 9112 §6.3", () => {
  assert.equal(
    parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n")!.length,
    BODY_CHUNKED,
  );
  const close = parse("HTTP/1.1 200 OK\r\n\r\n")!;
  assert.equal(close.length, BODY_UNTIL_CLOSE);
  assert.equal(close.keepAlive, false);
  assert.equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)!.length, 0);
  for (const status of [100, 103, 204, 304]) {
    assert.equal(parse(`HTTP/1.1 ${status} X\r\nContent-Length: 5\r\n\r\n`)!.length, 0);
  }
  assert.equal(
    parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")!.length,
    5,
  );
  assert.equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n")!.length, 5);
});

Deno.test("parseHead decides keep-alive and drops hop-by-hop and Connection-listed headers", () => {
  const closing = parse(
    "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: a\r\n" +
      "Content-Length: 0\r\nX-End: 2\r\n\r\n",
  )!;
  assert.equal(closing.keepAlive, false);
  assert.deepEqual([...closing.headers], [["content-length", "0"], ["x-end", "2"]]);
  assert.equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")!.keepAlive, false);
  const kept = parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")!;
  assert.equal(kept.keepAlive, true);
});

Deno.test("parseHead keeps obs-text bytes of header values", () => {
  const bytes = new Uint8Array([
    ...encoder.encode("HTTP/1.1 200 OK\r\nX-Latin: caf"),
    0xe9,
    ...encoder.encode("\r\nContent-Length: 0\r\n\r\n"),
  ]);
  assert.equal(parseHead(bytes, 0, bytes.length, false)!.headers.get("x-latin"), "caf\u00e9");
});

/** Heads that must be refused, never forwarded. */
export const BAD_HEADS: Record<string, string> = {
  "Content-Length with Transfer-Encoding":
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
  "Transfer-Encoding with Content-Length":
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
  "two differing Content-Lengths":
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
  "a differing Content-Length list": "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
  "a negative Content-Length": "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
  "a signed Content-Length": "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
  "a hex Content-Length": "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
  "an empty Content-Length": "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
  "a huge Content-Length": "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
  "an unknown Transfer-Encoding": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
  "chunked not alone": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
  "chunked twice":
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
  "Transfer-Encoding in HTTP/1.0": "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
  "an obs-folded header": "HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",
  "an obs-folded Content-Length": "HTTP/1.1 200 OK\r\nContent-Length:\r\n 3\r\n\r\nabc",
  "a bare LF after the status line": "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
  "a bare LF after a header": "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n",
  "a bare LF ending the head": "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n",
  "a space before the colon": "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc",
  "a NUL in a value": "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n",
  "a CR inside a value": "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",
  "an empty header name": "HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n",
  "an unknown HTTP version": "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
  "not HTTP at all": "SSH-2.0-OpenSSH_9.6\r\n",
  "a status of two digits": "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
  "a status of 600": "HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n",
  "an unrequested 101": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
  "a head over 64 KiB": `HTTP/1.1 200 OK\r\n${"X-Big: " + "a".repeat(MAX_HEAD_BYTES)}\r\n\r\n`,
};

Deno.test("parseHead refuses ambiguous framing and malformed heads", () => {
  for (const [name, text] of Object.entries(BAD_HEADS)) {
    assert.throws(() => parse(text), ProtocolError, name);
  }
});

Deno.test("parseHead refuses an endless head once it passes 64 KiB", () => {
  const text = `HTTP/1.1 200 OK\r\n${"X-Many: header\r\n".repeat(MAX_HEAD_BYTES / 16 + 1)}`;
  assert.throws(() => parse(text), ProtocolError);
  assert.equal(parse(text.slice(0, 1000)), null);
});

Deno.test("contentLength accepts digits and lists of one value only", () => {
  assert.equal(contentLength("0"), 0);
  assert.equal(contentLength("42"), 42);
  assert.equal(contentLength("42 , 42"), 42);
  for (const bad of ["", "4 2", "42, 43", "-1", "1e3", "0x1", "1234567890123456"]) {
    assert.equal(contentLength(bad), -1, bad);
  }
});
