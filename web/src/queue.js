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

// Visits the server stored but graded as weak evidence (`evidence.grade` not `ok`), kept for the
// worker to read until they dismiss them: a sync may run in the service worker with the page
// closed, and the page reports them when it next opens. Kept in the meta store (cleared at
// sign-out), newest first, at most FLAGGED_LIMIT, each {id, user, household_id, visited_at,
// outcome, evidence, syncedAt}.
export const FLAGGED_KEY = "flagged";
export const FLAGGED_LIMIT = 50;
const isWeak = (visit) => Boolean(visit?.evidence?.grade) && visit.evidence.grade !== "ok";

/** The flagged visits kept on this device, of whichever user. */
export async function listFlagged() {
  return (await getMeta(FLAGGED_KEY)) || [];
}
/** Forget one flagged visit (the worker has read why). */
export function dismissFlagged(id) {
  return updateFlagged((list) => list.filter((f) => f.id !== id));
}
/** Change the flagged list in `meta` inside the caller's transaction (the page and the service
 * worker may both sync: a read and its write in one transaction lose neither's). */
function changeFlagged(meta, change) {
  const read = meta.get(FLAGGED_KEY);
  read.onsuccess = () => meta.put(change(read.result || []), FLAGGED_KEY);
}
function updateFlagged(change) {
  return run(META, "readwrite", (meta) => changeFlagged(meta, change));
}

/** Empty the queue and forget the tokens (sign-out). */
export async function clearQueue() {
  await run(STORE, "readwrite", (store) => store.clear());
  await run(META, "readwrite", (store) => store.clear());
}

// Half a UTF-16 pair (an emoji cut by a keyboard or a paste) is written by JSON.stringify as a
// `\ud83d` escape, and the server refuses the whole body for it (a 400, as for any JSON it
// cannot store): kept in the queue, one such note held back every visit at every sync. Each
// half is sent as U+FFFD, as a UTF-8 encoder writes it; the rest of the text is as typed.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const wellFormed = (key, value) => (typeof value === "string" ? value.replace(LONE_SURROGATE, "\ufffd") : value);

let syncing = null;
let again = null;

/**
 * Send the signed-in user's pending visits through POST /api/v1/visits/batch (another user's stay
 * where they are). Created and duplicate visits leave the queue; rejected ones stay, marked with
 * the reason; a network failure leaves all as they were, and so does a batch refused whole (the
 * error thrown then carries the answer's `status` and `problem`). Stored visits the server
 * graded as weak evidence are kept in the flagged list (`listFlagged`). Returns {sent, created,
 * duplicate, rejected, left, flagged}, `left` counting the user's pending visits and `flagged`
 * listing this sync's weak ones.
 */
export function syncQueue() {
  if (!syncing) {
    syncing = doSync().finally(() => { syncing = null; });
    return syncing;
  }
  // A sync on its way sends the queue as it was when it began. A sync asked for meanwhile (the
  // visit just recorded asks for one) was handed that one, and the new visit waited for the
  // next reason to sync: with the page closed and no Background Sync, until the app was opened
  // again. It gets one more pass once the current one ends (one, however many ask meanwhile).
  again ??= syncing.catch(() => {}).then(() => {
    again = null;
    return syncQueue();
  });
  return again;
}

async function doSync() {
  let token = await getMeta("token");
  const user = tokenUser(token);
  const mine = async () => (await listQueued()).filter((r) => r.state === "pending" && user && r.user === user);
  const pending = await mine();
  const summary = { sent: 0, created: 0, duplicate: 0, rejected: 0, left: 0, flagged: [] };
  for (let i = 0; i < pending.length; i += BATCH_LIMIT) {
    const chunk = pending.slice(i, i + BATCH_LIMIT);
    const body = JSON.stringify({ visits: chunk.map((r) => r.visit) }, wellFormed);
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
    const flagged = [];
    // The flagged ones are kept in the transaction that takes their visits out of the queue.
    await run([STORE, META], "readwrite", (store, meta) => {
      for (const result of results) {
        if (result.status === "created" || result.status === "duplicate") {
          store.delete(result.id);
          summary[result.status] += 1;
          // A duplicate too: the answer to the first send may have been lost on the way.
          if (isWeak(result.visit)) {
            const { household_id, visited_at, outcome, evidence } = result.visit;
            flagged.push({ id: result.id, user, household_id, visited_at, outcome, evidence, syncedAt: Date.now() });
          }
        } else if (result.status === "rejected") {
          const record = chunk.find((r) => r.id === result.id);
          // The refusal as the server gave it (its code, field errors and particulars), for
          // the page to say in the worker's language; `reason` is its English.
          const { id, status, visit, ...refusal } = result;
          if (record) store.put({ ...record, state: "rejected", reason: result.reason || result.detail || "", refusal });
          summary.rejected += 1;
        }
      }
      if (flagged.length) {
        const fresh = new Set(flagged.map((f) => f.id));
        changeFlagged(meta, (list) => [...flagged, ...list.filter((f) => !fresh.has(f.id))].slice(0, FLAGGED_LIMIT));
      }
    });
    summary.flagged.push(...flagged);
  }
  summary.left = (await mine()).length;
  return summary;
}
