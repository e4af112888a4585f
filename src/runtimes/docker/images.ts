/**
 * Making sure an image is present: pulled when missing, with progress in the log.
 *
 * @module
 */

import { log } from "../../log.ts";
import { type DockerClient, DockerUnavailableError } from "./client.ts";

/**
 * The reference to pull: a tag-less name gets `:latest` (the API would otherwise pull every
 * tag).
 *
 * @example
 * ```ts
 * pullReference("localhost:5000/app"); // "localhost:5000/app:latest"
 * ```
 */
export function pullReference(image: string): string {
  const last = image.slice(image.lastIndexOf("/") + 1);
  return last.includes(":") || last.includes("@") ? image : `${image}:latest`;
}

/**
 * Pulls `image`, logging its progress. Rejects with an `Error` naming the image (fit for a
 * 503 body) when the pull fails; a {@link DockerUnavailableError} passes through.
 *
 * Permissions: those of {@link DockerClient}.
 *
 * @example
 * ```ts
 * await pullImage(docker, "nginx:1.27", signal);
 * ```
 */
export async function pullImage(
  docker: DockerClient,
  image: string,
  signal?: AbortSignal,
): Promise<void> {
  const reference = pullReference(image);
  log("info", "pulling image", { image: reference });
  const started = performance.now();
  try {
    for await (
      const doc of docker.stream("POST", "/images/create", {
        query: { fromImage: reference },
        signal,
      })
    ) {
      const { status, id } = doc as { status?: string; id?: string };
      if (status !== undefined) log("debug", "pull progress", { image: reference, id, status });
    }
  } catch (error) {
    if (error instanceof DockerUnavailableError || signal?.aborted) throw error;
    throw new Error(
      `Image "${image}" is not available locally and could not be pulled: ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  log("info", "pulled image", { image: reference, ms: Math.round(performance.now() - started) });
}
