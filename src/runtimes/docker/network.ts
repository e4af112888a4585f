/**
 * The Docker network services join: found by name, or created (bridge) when missing.
 *
 * @module
 */

import { log } from "../../log.ts";
import { type DockerClient, DockerConflictError, DockerNotFoundError } from "./client.ts";
import { LABEL_MANAGED, rfc3339Nanos } from "./spec.ts";

interface NetworkSummary {
  Id: string;
  Name: string;
  Created: string;
}

/** Networks named exactly `name`, oldest first (the filter also matches substrings). */
async function networksNamed(docker: DockerClient, name: string, signal?: AbortSignal) {
  const all = await docker.json<NetworkSummary[]>("GET", "/networks", {
    query: { filters: { name: [name] } },
    signal,
  });
  return all.filter((n) => n.Name === name).sort((a, b) => {
    const order = rfc3339Nanos(a.Created) - rfc3339Nanos(b.Created);
    return order < 0n ? -1 : order > 0n ? 1 : a.Id < b.Id ? -1 : 1;
  });
}

/**
 * Returns the ID of the network `name`, creating a bridge network when there is none.
 * Docker's duplicate check is racy, so two callers creating at once can both create one: the
 * oldest visible wins, and a later duplicate this call created is removed again. A network
 * only becomes visible once set up, so two calls made within milliseconds may still each
 * keep their own: callers in one process must not overlap (see `DockerRuntime`); two proxies
 * starting at the same instant on one daemon remain exposed to it.
 *
 * Permissions: those of {@link DockerClient}.
 *
 * @example
 * ```ts
 * const networkId = await ensureNetwork(docker, "nodetool-net");
 * ```
 */
export async function ensureNetwork(
  docker: DockerClient,
  name: string,
  signal?: AbortSignal,
): Promise<string> {
  const [existing] = await networksNamed(docker, name, signal);
  if (existing) return existing.Id;
  let created: string | null = null;
  try {
    created = (await docker.json<{ Id: string }>("POST", "/networks/create", {
      body: {
        Name: name,
        Driver: "bridge",
        CheckDuplicate: true,
        Labels: { [LABEL_MANAGED]: "true" },
      },
      signal,
    })).Id;
  } catch (error) {
    if (!(error instanceof DockerConflictError)) throw error;
  }
  const [winner] = await networksNamed(docker, name, signal);
  if (!winner) throw new DockerNotFoundError(`network ${name} vanished right after creation`);
  if (created !== null && created !== winner.Id) {
    await docker.json("DELETE", `/networks/${created}`).catch(() => {});
  } else if (created !== null) log("info", "created docker network", { network: name });
  return winner.Id;
}
