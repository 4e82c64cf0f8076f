// The offline visit queue in IndexedDB, shared by the app page and its service worker.

import { META, STORE, getMeta, run, setMeta } from "./idb.js";
import { refreshAccess, tokenClaims, tokenUser } from "./session.js";

export { getMeta, setMeta, tokenUser };
export const BATCH_LIMIT = 500;

/**
 * Queue one visit recorded by `user` (the record is {id, visit, user, state: "pending"|"rejected"|
 * "overtaken"|"correcting"|"correction-refused", reason, refusal, register_changes}). A visit
 * syncs only under its own worker's token: the server files it under the caller.
 * `registerChanges`: the household's register facts the worker found changed at the door (only
 * those changed: occupancy, members, tags), sent once the visit is stored (`sendCorrections`).
 */
export function enqueue(visit, user, registerChanges = null) {
  return run(STORE, "readwrite", (store) => store.put(withChanges({ id: visit.id, visit, user, state: "pending", queuedAt: Date.now() }, registerChanges)));
}
/** `record` carrying `changes` (none, or an empty set: it carries none). */
const hasChanges = (changes) => Boolean(changes && Object.keys(changes).length);
const withChanges = (record, changes) => (hasChanges(changes) ? { ...record, register_changes: changes } : record);

// The fields a worker edits in a refused visit (its place and time stay as recorded).
export const EDITED_FIELDS = ["household_id", "outcome", "notes", "follow_up", "follow_up_note", "follow_up_kind",
  "follow_up_title", "follow_up_urgency"];
const sameFields = (a, b) => EDITED_FIELDS.every((k) => (a?.[k] ?? null) === (b?.[k] ?? null));
// The register changes of a visit whose edit was overtaken (another version stored): what the
// worker learnt at the door is as true as before, and goes on its own, as a stored visit's does
// (`sendCorrections`); the "overtaken" record keeps only the edit. Kept with it, they were never
// sent and never shown.
const correctionOf = (record, visit, changes) => ({
  id: `${visit.id}#register`, user: record.user, visit: { id: visit.id, household_id: visit.household_id },
  register_changes: changes, state: "correcting", storedAt: Date.now(),
});
/** The edit the server never got: `visit` as the worker edited it, `stored` the fields of the
 * version the server stored before the edit reached it. Never sent (the server would answer
 * `duplicate`: a stored visit cannot be changed, there is no visit PATCH); listed for the worker
 * to read and note down, until they discard it. */
const overtaken = (record, visit, stored) => ({
  ...record, visit, state: "overtaken", stored: Object.fromEntries(EDITED_FIELDS.map((k) => [k, stored?.[k] ?? null])),
  overtakenAt: Date.now(),
});

/**
 * Queue a refused visit again as the worker edited it (`record` as it was when the edit began).
 * When it left the queue meanwhile, a sync having stored the earlier version (an automatic
 * resend, `RETRIED_REFUSALS`), the edit is kept as "overtaken" instead of sent: sent, the server
 * would answer `duplicate` and the queue drop it, the edit lost without a word. Answers
 * "pending" or "overtaken".
 */
export async function requeueEdited(record, visit, registerChanges = record.register_changes) {
  let state = "pending";
  await run(STORE, "readwrite", (store) => {
    const current = store.get(record.id);
    current.onsuccess = () => {
      if (current.result) store.put(withChanges({ id: visit.id, visit, user: record.user, state, queuedAt: Date.now() }, registerChanges));
      else {
        state = "overtaken";
        const { register_changes: _, ...edit } = record;
        store.put(overtaken({ ...edit, queuedAt: Date.now() }, visit, record.visit));
        if (hasChanges(registerChanges)) store.put(correctionOf(record, visit, registerChanges));
      }
    };
  });
  return state;
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

// Refusals that depend on the server's state, not on the visit: the household was moved or the
// worker not yet given its grid or a relief shift (the leader sorts that out later), or the
// server could not store it this time. Such a visit stays parked ("rejected", its reason shown,
// to edit or discard) and is sent again by the first sync at least RETRY_AFTER_MS after its last
// refusal, without a tap: parked for good, a real visit was discarded or forgotten. Every other
// code is the visit's own fault (a bad field or point, an id taken, a database rule, a point
// outside every grid) and would be refused again as it is: those wait for the worker's edit.
// tests/api/test_web.py holds these to the server's codes.
export const RETRIED_REFUSALS = ["household-not-found", "not-your-grid", "not-stored"];
// Six hours: a leader sorts a grid or a relief shift out in office hours, so a visit refused in
// the morning is tried again in the afternoon and the next morning; more often would only resend
// what is still refused (the worker who knows it is sorted can resend at once: edit, save).
export const RETRY_AFTER_MS = 6 * 3600 * 1000;

/** Whether a parked visit is due to be sent again at `now` (a clock set back counts as due). */
export function retryDue(record, now = Date.now()) {
  if (record.state !== "rejected" || !RETRIED_REFUSALS.includes(record.refusal?.code)) return false;
  const at = record.refusedAt ?? 0; // parked before refusals were timed: due now
  return now - at >= RETRY_AFTER_MS || at > now;
}

let syncing = null;
let again = null;

/**
 * Send the signed-in user's pending visits, and their parked ones due to be tried again
 * (`retryDue`), through POST /api/v1/visits/batch (another user's stay where they are). Created
 * and duplicate visits leave the queue; rejected ones stay, marked with the reason and the time
 * of the refusal; a network failure leaves all as they were, and so does a batch refused whole
 * (the error thrown then carries the answer's `status` and `problem`). Stored visits the server
 * graded as weak evidence are kept in the flagged list (`listFlagged`). A visit stored as sent
 * while the worker's edit of it waited in the queue stays there "overtaken" (`leave`). Returns
 * {sent, created, duplicate, rejected, retried, overtaken, left, flagged, corrected,
 * correctionsRefused}: `rejected` counts the visits newly refused, `retried` those tried again
 * and still refused, `overtaken` the edits the server did not get, `left` the user's pending
 * visits and `flagged` lists this sync's weak ones. A stored visit that carried register
 * changes stays as "correcting" until they are sent (`sendCorrections`): `corrected` lists the
 * households they changed (as the server answered), `correctionsRefused` counts those refused.
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
  const token = await getMeta("token");
  const user = tokenUser(token);
  const mine = async () => (await listQueued()).filter((r) => r.state === "pending" && user && r.user === user);
  const now = Date.now();
  // The pending visits, and the parked ones due to be tried again (they stay parked meanwhile).
  const pending = (await listQueued()).filter((r) => user && r.user === user && (r.state === "pending" || retryDue(r, now)));
  const summary = { sent: 0, created: 0, duplicate: 0, rejected: 0, retried: 0, overtaken: 0, left: 0, flagged: [], corrected: [], correctionsRefused: 0, correctionsHeld: null };
  await sendInBatches("/api/v1/visits/batch", pending, token, async (chunk, results) => {
    summary.sent += chunk.length;
    const flagged = [];
    // The flagged ones are kept in the transaction that takes their visits out of the queue.
    await run([STORE, META], "readwrite", (store, meta) => {
      for (const result of results) {
        if (result.status === "created" || result.status === "duplicate") {
          leave(store, result.id, chunk.find((r) => r.id === result.id), result.visit, summary, result.status === "duplicate");
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
          if (!record) continue;
          const parked = { ...record, state: "rejected", reason: result.reason || result.detail || "", refusal, refusedAt: Date.now() };
          // Parked (or, tried again and still refused, parked as it was with the reason the
          // server gives now) only while its record is as it was sent. Edited meanwhile, it goes
          // again as edited (parked, the edit was lost); discarded, or gone with the queue at a
          // sign-out while another realm's sync (the service worker's, another tab's) was on
          // its way, nothing comes back (put back, the visit's household and notes stayed on a
          // phone signed out to be handed on).
          const current = store.get(record.id);
          current.onsuccess = () => {
            const now = current.result;
            if (now && now.state === record.state && now.queuedAt === record.queuedAt) store.put(parked);
          };
          summary[record.state === "rejected" ? "retried" : "rejected"] += 1;
        }
      }
      if (flagged.length) {
        // Kept only for the user still signed in here: signed out meanwhile, the device keeps
        // nothing of theirs.
        const signedIn = meta.get("token");
        signedIn.onsuccess = () => {
          if (tokenUser(signedIn.result) !== user) return;
          const fresh = new Set(flagged.map((f) => f.id));
          changeFlagged(meta, (list) => [...flagged, ...list.filter((f) => !fresh.has(f.id))].slice(0, FLAGGED_LIMIT));
        };
      }
    });
    summary.flagged.push(...flagged);
  });
  await sendCorrections(user, summary);
  summary.left = (await mine()).length;
  return summary;
}

/**
 * Send the register changes of the user's stored visits ("correcting"), each once, as
 * PATCH /api/v1/households/{id} of the fields changed. A PATCH sets the values it carries, so one
 * sent again after its answer was lost changes nothing more (the route takes no Idempotency-Key,
 * and needs none). Answered, the record leaves the queue and the household as answered is listed
 * in `summary.corrected` (the page's cached households take it); refused (a 4xx: the household
 * no longer the worker's, out of the register, a value the register does not take), it stays as
 * "correction-refused" with the server's words, for the worker to read and dismiss, never sent
 * again; no answer (offline, a 5xx), it waits for the next sync, and so do the ones after it:
 * `summary.correctionsHeld` says why ({status, retryAfter}; status 0: no answer at all), for
 * the page to sync again later, as it does after a visit the server put off.
 */
async function sendCorrections(user, summary) {
  const records = (await listQueued()).filter((r) => user && r.user === user && r.state === "correcting");
  summary.correctionsHeld = await patchCorrections(records, async (record, response, body) => {
    await settleCorrection(record, response, body);
    if (response.ok) summary.corrected.push({ household_id: record.visit.household_id, changes: record.register_changes, household: body });
    else summary.correctionsRefused += 1;
  });
}

/**
 * PATCH each record's register changes to its household, in order, as the signed-in user;
 * `handle(record, response, body)` takes each answer. No answer (offline), a 5xx, 408, 429 or a
 * 401 a refresh did not mend stops there: the rest wait with it. Returns why it stopped
 * ({status, retryAfter}; status 0: no answer at all), or null when every one was answered.
 */
async function patchCorrections(records, handle) {
  for (const record of records) {
    let response;
    const send = (token) => fetch(`/api/v1/households/${encodeURIComponent(record.visit.household_id)}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify(record.register_changes || {}),
    });
    try {
      const token = await getMeta("token");
      response = await send(token);
      if (response.status === 401) response = await send(await refreshAccess(token));
    } catch {
      return { status: 0 };
    }
    if (response.status >= 500 || [401, 408, 429].includes(response.status)) {
      return { status: response.status, retryAfter: response.headers.get("Retry-After") };
    }
    await handle(record, response, await response.json().catch(() => null));
  }
  return null;
}

/** Whether account `worker` is switched off, as the caller reads it (not found: not known). */
async function switchedOff(worker, token) {
  const response = await fetch(`/api/v1/users/${encodeURIComponent(worker)}`, { headers: { Authorization: `Bearer ${token}` } })
    .catch(() => null);
  return Boolean(response?.ok) && (await response.json().catch(() => null))?.active === false;
}

/** A correction answered: out of the queue once taken; refused, kept as "correction-refused"
 * with the server's words (for `user`, who reads and dismisses it: by default its own). */
function settleCorrection(record, response, body, user = record.user) {
  return run(STORE, "readwrite", (store) => {
    const current = store.get(record.id);
    current.onsuccess = () => {
      if (current.result?.state !== "correcting") return; // discarded, or signed out, meanwhile
      if (response.ok) store.delete(record.id);
      else {
        const refusal = { status: response.status, type: body?.type, detail: body?.detail || body?.title || `HTTP ${response.status}`, errors: body?.errors, changed: body?.changed };
        store.put({ ...current.result, user, state: "correction-refused", reason: refusal.detail, refusal, refusedAt: Date.now() });
      }
    };
  });
}

/**
 * POST queued visits (`records`) to `url` in batches of at most BATCH_LIMIT, each answer handed
 * to `handle(chunk, results)` before the next batch goes. A batch too large for the server or a
 * proxy before it (413: its body size, not its count) goes again in halves, down to one visit:
 * sent whole at every sync, it was refused every time and nothing behind it ever went. Any
 * other failure throws (`sendBatch`), the batches answered so far handled.
 */
async function sendInBatches(url, records, token, handle) {
  const chunks = [];
  for (let i = 0; i < records.length; i += BATCH_LIMIT) chunks.push(records.slice(i, i + BATCH_LIMIT));
  while (chunks.length) {
    const chunk = chunks.shift();
    let results;
    try {
      ({ results, token } = await sendBatch(url, chunk, token));
    } catch (error) {
      if (error.status !== 413 || chunk.length < 2) throw error;
      const half = Math.ceil(chunk.length / 2);
      chunks.unshift(chunk.slice(0, half), chunk.slice(half));
      continue;
    }
    await handle(chunk, results);
  }
}

/**
 * POST queued visits (`chunk`) to `url` as a batch; {results, token}. An access token that
 * expired during a long day offline is refreshed (under the same user) and the batch sent once
 * more: a batch is idempotent, so a resend is always safe. A batch refused whole (a problem,
 * RFC 9457) throws with its `status`, `problem` and `retryAfter` (the header, if any): the page
 * says why; the queue keeps all.
 */
async function sendBatch(url, chunk, token) {
  const body = JSON.stringify({ visits: chunk.map((r) => r.visit) }, wellFormed);
  const send = () => fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body,
  });
  let response = await send();
  if (response.status === 401) {
    token = await refreshAccess(token);
    response = await send();
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    const retryAfter = response.headers.get("Retry-After");
    throw Object.assign(new Error(`batch answered ${response.status}`), { status: response.status, problem, retryAfter });
  }
  const { results = [] } = await response.json();
  return { results, token };
}

/**
 * A visit the server stored takes its record out of the queue, unless the worker edited it
 * while it was on its way (a parked visit sent again automatically, edited meanwhile: its
 * record changed since it was sent). Taken out then, the edit was lost without a word; it stays,
 * "overtaken", with what the server stored (`stored`: the answer's visit, else what was sent).
 * So too a `duplicate` whose stored version differs from the record: an earlier send was
 * stored but its answer lost (the lift, the phone killed), the visit still showed as refused,
 * and the worker's edit of it reached a server that keeps the first version.
 */
function leave(store, id, sent, storedVisit, summary, duplicate = false) {
  if (!sent) {
    store.delete(id);
    return;
  }
  const current = store.get(sent.id);
  current.onsuccess = () => {
    const now = current.result;
    if (!now) return;
    const editedOnItsWay = now.queuedAt !== sent.queuedAt && now.state === "pending" && !sameFields(now.visit, sent.visit);
    const storedOtherwise = duplicate && now.state !== "overtaken" && storedVisit && !storedAsSent(storedVisit, now.visit);
    if (editedOnItsWay || storedOtherwise) {
      const { register_changes: changes, ...edit } = now;
      store.put(overtaken(edit, now.visit, storedVisit || sent.visit));
      if (hasChanges(changes)) store.put(correctionOf(now, now.visit, changes));
      summary.overtaken += 1;
    } else if (hasChanges(now.register_changes)) {
      // The visit is stored; the register changes it carries go next (`sendCorrections`).
      store.put({ ...now, state: "correcting", storedAt: Date.now() });
    } else {
      store.delete(sent.id);
    }
  };
}

/** Whether the server's stored `stored` holds the edited fields of `visit` as sent (text as
 * `wellFormed` sends it; a field the answer withholds, null, is not compared). */
function storedAsSent(stored, visit) {
  return EDITED_FIELDS.every((k) => {
    if (stored[k] == null || !(k in visit)) return true;
    return stored[k] === wellFormed(k, visit[k] ?? null);
  });
}

/**
 * Hand over another user's visits left on this phone (a worker switched off: they can no longer
 * sign in to send them) through POST /api/v1/visits/handover?worker=ID, as the signed-in
 * community admin. Stored ones (created, duplicate) leave the queue; refused ones stay, marked
 * with the reason, as a sync leaves them; a batch refused whole (a problem: the account is still
 * active, the caller is no admin) throws with its `status` and `problem`, the queue unchanged.
 * The register changes the visits carried (住户信息有变化？) are sent after them, as the caller:
 * a sync sends only the signed-in worker's, and the worker can no longer sign in. One refused is
 * kept for the caller to read and dismiss, but one not the caller's (403: a leader's, of a grid
 * they do not lead), left for the admin; with no answer, it waits here for the next handover.
 * Returns {sent, stored, rejected, corrected, correctionsRefused, correctionsLeft, correctionsHeld}.
 */
export async function handOver(worker) {
  const token = await getMeta("token");
  const records = (await listQueued()).filter((r) => r.user === worker && (r.state === "pending" || r.state === "rejected"));
  const summary = { sent: 0, stored: 0, rejected: 0, corrected: 0, correctionsRefused: 0, correctionsLeft: 0, correctionsHeld: null };
  await sendInBatches(`/api/v1/visits/handover?worker=${encodeURIComponent(worker)}`, records, token, async (chunk, results) => {
    summary.sent += chunk.length;
    await run([STORE], "readwrite", (store) => {
      for (const result of results) {
        const record = chunk.find((r) => r.id === result.id);
        if (!record) continue;
        if (result.status === "created" || result.status === "duplicate") {
          if (hasChanges(record.register_changes)) store.put({ ...record, state: "correcting" });
          else store.delete(record.id);
          summary.stored += 1;
        } else if (result.status === "rejected") {
          const { id, status, visit, ...refusal } = result;
          store.put({ ...record, state: "rejected", reason: result.reason || "", refusal, refusedAt: Date.now() });
          summary.rejected += 1;
        }
      }
    });
  });
  const me = tokenUser(token);
  const leader = tokenClaims(token).role === "grid_leader";
  const correcting = (await listQueued()).filter((r) => r.user === worker && r.state === "correcting");
  // With no visit to send, nothing asked the server whether the account is switched off (an
  // active worker's are theirs to send): asked here, the corrections waiting alone.
  if (correcting.length && !records.length && !(await switchedOff(worker, token))) {
    throw Object.assign(new Error("the worker's account is not switched off"), { status: 409 });
  }
  summary.correctionsHeld = await patchCorrections(correcting, async (record, response, body) => {
    // Not the leader's to correct (a household of a grid they do not lead: not found to them,
    // 404, or 403): left as it is, for the community admin's handover, as such a visit is.
    if (leader && [403, 404].includes(response.status)) {
      summary.correctionsLeft += 1;
      return;
    }
    await settleCorrection(record, response, body, me);
    summary[response.ok ? "corrected" : "correctionsRefused"] += 1;
  });
  return summary;
}
