/**
 * Parsing of Docker's streamed JSON (`/events`, image pull and build progress): one JSON
 * document per line.
 *
 * @module
 */

/**
 * Yields each JSON document of a newline-delimited stream as it arrives.
 *
 * @example
 * ```ts
 * for await (const event of jsonLines(res.body!)) log("debug", "docker event", { event });
 * ```
 */
export async function* jsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  let pending = "";
  for await (const text of body.pipeThrough(new TextDecoderStream())) {
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() !== "") yield JSON.parse(line);
    }
  }
  if (pending.trim() !== "") yield JSON.parse(pending);
}
