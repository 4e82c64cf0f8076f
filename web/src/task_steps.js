// A task's steps kept on the phone until the server answers them: taken with no signal (a
// B-post worker at the door pressing 办结), or their answer lost, they were gone with the page,
// the note typed with them. Each is kept (IndexedDB, the meta store's `taskSteps`) with its
// Idempotency-Key, the task's `updated_at` it was taken on (`once`), its body as sent and the
// photos chosen for it (Blobs, until uploaded: then their ids), and sent by the app's syncs
// with the same key and body: a retry is answered with the first answer, never done twice. A
// refusal (a 4xx: the task changed meanwhile, reassigned, closed) is kept with the server's
// words, for the worker to discard or take again; never dropped without a word.
import {
  TASK_TEXT, api, carriedOut, getToken, newIdempotencyKey, oneAtATime, pickLang, refusalWords, noAnswer,
} from "./common.js";
import { META, getMeta, run } from "./idb.js";
import { tokenUser } from "./session.js";

// Each {key, user, task_id, title, once, body: {action, note, satisfaction?}, photos: [{id} |
// {blob, name}], state: "pending"|"refused", refusal, takenAt, dated (sent with takenAt)}. One a task: a step taken anew
// on the task replaces the one kept. A sign-out empties the meta store with the visit queue.
export const STEPS_KEY = "taskSteps";

/** Every step kept on this phone, oldest first. */
export async function listSteps() {
  return (await getMeta(STEPS_KEY)) || [];
}

/** The signed-in user's kept steps. */
export async function mySteps() {
  const user = tokenUser(getToken());
  return user ? (await listSteps().catch(() => [])).filter((r) => r.user === user) : [];
}

/** Change the kept list in one transaction (two tabs may send at once: neither's write is lost). */
function changeSteps(change) {
  return run(META, "readwrite", (meta) => {
    const read = meta.get(STEPS_KEY);
    read.onsuccess = () => meta.put(change(read.result || []), STEPS_KEY);
  });
}
export const dropStep = (key) => changeSteps((list) => list.filter((r) => r.key !== key));

/** A kept step the worker discards: gone from the phone, and the photos already uploaded for it
 * deleted on the server (their own, sent with no step: `DELETE /tasks/{id}/photos/{id}`), as far
 * as it answers: left, they stayed on the task until retention, months later. */
export async function discardStep(record) {
  await dropStep(record.key);
  for (const photo of record.photos || []) {
    if (photo.id) await api(`/api/v1/tasks/${record.task_id}/photos/${photo.id}`, { method: "DELETE" }).catch(() => {});
  }
}

/** The body a step went with as a retry must send it again: same fields, same order. */
const sameBody = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The step waiting on the phone for `task` as it was read (its `updated_at`) that `body` would
 * replace: another step pressed on the same page, no answer come meanwhile (null if none). */
export async function waitingOther({ task, body }) {
  const user = tokenUser(getToken());
  return (await listSteps()).find((r) => r.user === user && r.task_id === task.id && r.state === "pending"
    && r.once === task.updated_at && !sameBody(r.body, body)) || null;
}

/**
 * Keep a step before it is sent (a page lost on the way still has it). The same step asked
 * again of the task as it was (`once`), with the same words and no new photos, is the one kept:
 * it keeps its key. Anything else taken on the task replaces what was kept of it. `photos`:
 * each {blob, name} (chosen, not yet uploaded) or {id} (uploaded).
 */
export async function keepStep({ task, body, photos }) {
  const user = tokenUser(getToken());
  const mine = (await listSteps()).filter((r) => r.user === user && r.task_id === task.id);
  const same = mine.find((r) => r.state === "pending" && r.once === task.updated_at && sameBody(r.body, body) && !photos.length);
  const record = same || {
    key: newIdempotencyKey(), user, task_id: task.id, title: task.title, once: task.updated_at, body,
    photos: photos.map((p) => (p.id ? { id: p.id } : { blob: p.blob, name: p.name })), state: "pending",
    refusal: "", takenAt: new Date().toISOString(), dated: true,
  };
  await changeSteps((list) => [...list.filter((r) => !(r.user === user && r.task_id === task.id)), record]);
  return record;
}

// A step waits while its sends get no answer (`noAnswer`); a 409 of its key saying it was
// carried out (a twin still answering, or the server down before keeping the answer) is done.
// Every other 4xx is the step's own (the task is no longer where it was taken: 409, 403, 404):
// refused, nothing done.


/**
 * Why the server refused a step, in the worker's language (the server words it in English,
 * and a Chinese page said "Cannot resolve a task that is dispatched; you may: accept, ..."):
 * the task's state now and the steps left to the caller (a 409 names both), a step no longer
 * theirs (403: given to someone else), a task out of their reach (404); else the server's words.
 */
export function stepRefusalWords(error, lang = pickLang()) {
  const words = TASK_TEXT[lang];
  const body = error.body || {};
  const zh = lang === "zh";
  if (error.status === 409 && typeof body.state === "string") {
    const state = words.statuses[body.state] || body.state;
    const yours = (Array.isArray(body.allowed) ? body.allowed : []).map((a) => words.actions[a] || a);
    if (zh) return `任务现为“${state}”，${yours.length ? `您可做的是：${yours.join("、")}` : "已没有您可做的步骤"}。`;
    return `The task is now ${state}: ${yours.length ? `you may ${yours.join(", ").toLowerCase()}` : "no step is left to you"}.`;
  }
  if (error.status === 403) {
    return zh ? "这一步已不由您办理（任务可能已改派给他人）。" : "This step is no longer yours to take (the task may have been given to someone else).";
  }
  if (error.status === 404) {
    return zh ? "这项任务已不在您的范围内（可能已移至其他网格）。" : "That task is no longer within your reach (moved to another grid?).";
  }
  return refusalWords(error);
}

/** Send one kept step: its photos first (each id kept as it is answered: a photo sent again is
 * answered with the id it was given), then the step with its key. {task} (null: carried out,
 * its answer lost), {refusal} or {error}. */
async function sendOne(record, progress) {
  try {
    const photos = record.photos || [];
    for (const [i, photo] of photos.entries()) {
      if (photo.id) continue;
      progress?.(i + 1, photos.length);
      const form = new FormData();
      form.append("file", photo.blob, photo.name);
      let id;
      try {
        ({ id } = await api(`/api/v1/tasks/${record.task_id}/photos`, { method: "POST", body: form }));
      } catch (error) {
        return noAnswer(error) ? { error } : { refusal: stepRefusalWords(error), photo: true };
      }
      photos[i] = { id };
      await changeSteps((list) => list.map((r) => (r.key === record.key ? { ...r, photos: photos.slice() } : r)));
    }
    // With the time it was taken: what it settles (the contact made, the resolution) is dated
    // then, not at the sync that brought it. A step kept before steps went with their time
    // (not `dated`) goes as it went first: its key's retry must be the same request.
    const taken = record.dated ? { taken_at: record.takenAt } : {};
    const body = { ...record.body, ...taken, ...(photos.length ? { photos: photos.map((p) => p.id) } : {}) };
    const task = await api(`/api/v1/tasks/${record.task_id}/transitions`, {
      method: "POST", body, headers: { "Idempotency-Key": record.key },
    });
    return { task };
  } catch (error) {
    if (carriedOut(error)) return { task: null };
    return noAnswer(error) ? { error } : { refusal: stepRefusalWords(error) };
  }
}

/**
 * Send the signed-in user's pending steps, one by one with their own keys: those done leave the
 * phone, those refused stay (state "refused", with the server's words), the rest wait (the first
 * that gets no answer ends the pass). One pass at a time (`oneAtATime`). Answers {done:
 * [{record, task}], refused: [{record, refusal}], error}. `progress(i, n)`: a photo uploading.
 */
export const sendSteps = oneAtATime(sendPass);

async function sendPass(progress) {
  const outcome = { done: [], refused: [], error: null };
  for (const record of (await mySteps()).filter((r) => r.state === "pending")) {
    const { task, refusal, photo, error } = await sendOne(record, progress);
    if (error) {
      outcome.error = error;
      break;
    }
    if (task !== undefined) {
      await dropStep(record.key);
      outcome.done.push({ record, task });
    } else {
      // Kept for the worker only while it is (discarded meanwhile in another tab: gone).
      await changeSteps((list) => list.map((r) => (r.key === record.key ? { ...r, state: "refused", refusal, photoRefused: Boolean(photo), refusedAt: Date.now() } : r)));
      outcome.refused.push({ record, refusal, photo: Boolean(photo) });
    }
  }
  return outcome;
}
