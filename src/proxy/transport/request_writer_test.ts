import assert from "node:assert/strict";
import { Connection } from "./connection.ts";
import { CHUNKED, encodeHead, NO_BODY, writeBody } from "./request_writer.ts";

const decoder = new TextDecoder();

Deno.test("encodeHead writes the target raw, Host, headers as they are, and one framing", () => {
  const headers = new Headers({
    accept: "*/*",
    host: "client.test",
    "content-length": "99",
    "x-latin": "caf\u00e9",
  });
  const text = (framing: number, target = "/x?q='\"<>") =>
    decoder.decode(encodeHead("POST", target, "up:8", headers, framing));
  assert.equal(
    text(NO_BODY),
    "POST /x?q='\"<> HTTP/1.1\r\nhost: up:8\r\naccept: */*\r\nx-latin: caf\ufffd\r\n\r\n",
  );
  assert.match(text(CHUNKED), /\r\ntransfer-encoding: chunked\r\n\r\n$/);
  assert.match(text(5), /\r\ncontent-length: 5\r\n\r\n$/);
  const bytes = encodeHead("GET", "/\u00fc", "up", headers, NO_BODY);
  assert.deepEqual([...bytes.subarray(4, 7)], [0x2f, 0xc3, 0xbc], "the target as UTF-8");
  assert.ok(bytes.includes(0xe9), "header values byte for byte");
});

/** Runs `writeBody` into a socket pair; returns what arrived, or the error. */
async function written(chunks: string[], framing: number): Promise<string | Error> {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = server.accept();
  const connection = new Connection(
    await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
    "k",
    () => {},
  );
  const peer = await accepted;
  server.close();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      controller.close();
    },
  });
  const reading = new Response(peer.readable).text();
  let outcome: string | Error;
  try {
    await writeBody(connection, body.getReader(), framing, null);
    connection.close();
    outcome = await reading;
  } catch (error) {
    connection.close();
    await reading.catch(() => {});
    outcome = error as Error;
  }
  return outcome;
}

Deno.test("writeBody frames chunks and checks lengths", async () => {
  assert.equal(await written(["abc", "", "de"], CHUNKED), "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  assert.equal(await written([], CHUNKED), "0\r\n\r\n");
  assert.equal(await written(["abc", "de"], 5), "abcde");
  assert.ok(await written(["abc", "def"], 5) instanceof RangeError, "longer than its length");
  assert.ok(await written(["abc"], 5) instanceof RangeError, "shorter than its length");
});
