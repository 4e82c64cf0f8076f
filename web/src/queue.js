// The offline visit queue in IndexedDB, shared by the app page and its service worker.

import { META, STORE, getMeta, run, setMeta } from "./idb.js";
import { refreshAccess, tokenUser } from "./session.js";

export { getMeta, setMeta, tokenUser };
export const BATCH_LIMIT = 500;

/**
 * Queue one visit recorded by `user` (the record is {id, visit, user, state: "pending"|"rejected",
 * reason, refusal}). A visit syncs only under its own worker's token: the server files it under the caller.
 */
export function enqueue(visit, user) {
  return run(STORE, "readwrite", (store) => store.put({ id: visit.id, visit, user, state: "pending", queuedAt: Date.now() }));
}
/** Drop one queued visit (the worker discarded a visit the server refused). */
export function discard(id) {
  return run(STORE, "readwrite", (store) => store.delete(id));
}
/** Every queued visit, of whichever user. */
export function listQueued() {
  return run(STORE, "readonly", (store) => store.getAll());
}
/** Empty the queue and forget the tokens (sign-out). */
export async function clearQueue() {
  await run(STORE, "readwrite", (store) => store.clear());
  await run(META, "readwrite", (store) => store.clear());
}

let syncing = null;

/**
 * Send the signed-in user's pending visits through POST /api/v1/visits/batch (another user's stay
 * where they are). Created and duplicate visits leave the queue; rejected ones stay, marked with
 * the reason; a network failure leaves all as they were, and so does a batch refused whole (the
 * error thrown then carries the answer's `status` and `problem`). Returns {sent, created,
 * duplicate, rejected, left}, `left` counting the user's pending visits.
 */
export function syncQueue() {
  if (!syncing) syncing = doSync().finally(() => { syncing = null; });
  return syncing;
}

async function doSync() {
  let token = await getMeta("token");
  const user = tokenUser(token);
  const mine = async () => (await listQueued()).filter((r) => r.state === "pending" && user && r.user === user);
  const pending = await mine();
  const summary = { sent: 0, created: 0, duplicate: 0, rejected: 0, left: 0 };
  for (let i = 0; i < pending.length; i += BATCH_LIMIT) {
    const chunk = pending.slice(i, i + BATCH_LIMIT);
    const body = JSON.stringify({ visits: chunk.map((r) => r.visit) });
    const send = () => fetch("/api/v1/visits/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body,
    });
    let response = await send();
    if (response.status === 401) {
      // The access token expired during a long day offline: refresh it (under the same user)
      // and send the batch once more. A batch is idempotent, so a resend is always safe.
      token = await refreshAccess(token);
      response = await send();
    }
    if (!response.ok) {
      // Refused whole (a problem, RFC 9457): the page says why; the queue keeps everything.
      const problem = await response.json().catch(() => null);
      throw Object.assign(new Error(`batch answered ${response.status}`), { status: response.status, problem });
    }
    const { results = [] } = await response.json();
    summary.sent += chunk.length;
    await run(STORE, "readwrite", (store) => {
      for (const result of results) {
        if (result.status === "created" || result.status === "duplicate") {
          store.delete(result.id);
          summary[result.status] += 1;
        } else if (result.status === "rejected") {
          const record = chunk.find((r) => r.id === result.id);
          // The refusal as the server gave it (its code, field errors and particulars), for
          // the page to say in the worker's language; `reason` is its English.
          const { id, status, visit, ...refusal } = result;
          if (record) store.put({ ...record, state: "rejected", reason: result.reason || result.detail || "", refusal });
          summary.rejected += 1;
        }
      }
    });
  }
  summary.left = (await mine()).length;
  return summary;
}
