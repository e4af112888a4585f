/**
 * RFC 9457 `application/problem+json` responses for every error the proxy itself answers.
 * Details are meant for clients: never put secrets, tokens or internal paths in them.
 *
 * @module
 */

/** Standard titles of the statuses the proxy answers itself. */
const TITLES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * A problem response with `type: "about:blank"`, the status's standard title and `detail`.
 *
 * @example
 * ```ts
 * problem(404, "No route for this path.");
 * ```
 */
export function problem(status: number, detail: string, headers?: HeadersInit): Response {
  const body = JSON.stringify({
    type: "about:blank",
    title: TITLES[status] ?? "Error",
    status,
    detail,
  });
  const response = new Response(body, { status, headers });
  response.headers.set("content-type", "application/problem+json");
  return response;
}

/** 400: the request path or target cannot be normalised. */
export function badRequest(detail: string): Response {
  return problem(400, detail);
}

/** 401 with `WWW-Authenticate: Bearer` (and `error="invalid_token"` when a token was wrong). */
export function unauthorized(tokenGiven: boolean): Response {
  return problem(
    401,
    tokenGiven ? "The bearer token is not valid." : "A bearer token is required.",
    { "www-authenticate": tokenGiven ? 'Bearer error="invalid_token"' : "Bearer" },
  );
}

/** 404: no route or file for the path. */
export function notFound(detail = "No route for this path."): Response {
  return problem(404, detail);
}

/** 405 with `Allow`: a method the proxy never forwards (CONNECT, TRACE, TRACK). */
export function methodNotAllowed(method: string): Response {
  return problem(405, `The proxy does not forward ${method} requests.`, {
    allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
  });
}

/** 502: the upstream refused the connection or broke it before answering. */
export function badGateway(detail = "The upstream service did not answer."): Response {
  return problem(502, detail);
}

/** 503 with `Retry-After`: the service could not be started or made ready in time. */
export function serviceUnavailable(detail: string, retryAfterSeconds: number): Response {
  return problem(503, detail, { "retry-after": String(Math.max(0, Math.ceil(retryAfterSeconds))) });
}

/** 504: the upstream sent no response headers within the response timeout. */
export function gatewayTimeout(): Response {
  return problem(504, "The upstream service did not respond in time.");
}

/** 500: a failure inside the proxy; the detail stays generic (the log has the cause). */
export function internalError(): Response {
  return problem(500, "The proxy failed to handle the request.");
}
