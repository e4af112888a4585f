/**
 * Typed errors of the Docker Engine API client. Each keeps the daemon's own message.
 *
 * @module
 */

/**
 * The daemon answered with an error status. `message` is the daemon's `message` field.
 *
 * @example
 * ```ts
 * try {
 *   await docker.json("POST", "/containers/web/start");
 * } catch (e) {
 *   if (e instanceof DockerDaemonError) log("warn", "start failed", { status: e.status, error: e.message });
 * }
 * ```
 */
export class DockerDaemonError extends Error {
  /** HTTP status the daemon answered with. */
  readonly status: number;

  /** @param status HTTP status; @param message the daemon's message. */
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DockerDaemonError";
    this.status = status;
  }
}

/** 404: no such container, image or network. */
export class DockerNotFoundError extends DockerDaemonError {
  /** @param message the daemon's message, e.g. `No such container: web`. */
  constructor(message: string, options?: ErrorOptions) {
    super(404, message, options);
    this.name = "DockerNotFoundError";
  }
}

/** 409: a name is taken, or the object is in the wrong state (e.g. removal in progress). */
export class DockerConflictError extends DockerDaemonError {
  /** @param message the daemon's message. */
  constructor(message: string, options?: ErrorOptions) {
    super(409, message, options);
    this.name = "DockerConflictError";
  }
}

/** The daemon cannot be reached: socket missing, connection refused or dropped. */
export class DockerUnavailableError extends Error {
  /** @param socket the socket path that was dialled; @param message what went wrong. */
  constructor(readonly socket: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DockerUnavailableError";
  }
}

/**
 * Maps an error status and the body the daemon sent to the matching typed error.
 *
 * @example
 * ```ts
 * throw daemonError(404, '{"message":"No such container: web"}'); // DockerNotFoundError
 * ```
 */
export function daemonError(status: number, body: string): DockerDaemonError {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body);
    if (typeof parsed?.message === "string") message = parsed.message;
  } catch {
    // Not JSON: keep the raw text as the message.
  }
  if (message === "") message = `Docker answered HTTP ${status}`;
  if (status === 404) return new DockerNotFoundError(message);
  if (status === 409) return new DockerConflictError(message);
  return new DockerDaemonError(status, message);
}
