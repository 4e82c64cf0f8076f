// The pages of the worker's own open tasks kept on the phone, for the door without a signal.
// A task's page was online only: a B-post worker in a basement who tapped a task to read what
// the resident asked, their number or the door, or to press 办结 (which the app keeps until it
// can send it: task_steps.js), read "离线：任务详情需要联网". Each open task assigned to the
// signed-in user is kept as last read (IndexedDB, the meta store's `taskPages`): read again as
// the task list is read online when it changed since (its `updated_at`), and as the page is
// opened online; forgotten when it leaves the user's open tasks (closed, reassigned). Of the
// household only the door is kept (building, unit, floor, room), none of its residents; a
// sign-out empties the meta store with the rest.
import { api, getToken, noAnswer, oneAtATime } from "./common.js";
import { META, getMeta, run } from "./idb.js";
import { tokenUser } from "./session.js";

export const PAGES_KEY = "taskPages";
// A worker holds a few dozen open tasks at most; past this many the newest are kept.
export const PAGES_LIMIT = 100;
const DOOR = ["building", "unit", "floor", "room"];

/** {user, pages: {id: {task, household, readAt}}} changed in one transaction, for `user`: a
 * page of another user (the phone handed over) is never mixed with theirs. */
function changePages(user, change) {
  return run(META, "readwrite", (meta) => {
    const read = meta.get(PAGES_KEY);
    read.onsuccess = () => {
      const pages = read.result?.user === user ? read.result.pages : {};
      meta.put({ user, pages: change({ ...pages }) }, PAGES_KEY);
    };
  });
}

const door = (household) => household && Object.fromEntries(DOOR.map((k) => [k, household[k] ?? null]));
const mine = (task, user) => user && String(task.assignee_id) === String(user);

/** The page kept of task `id` for the signed-in user ({task, household, readAt}), or null. */
export async function keptPage(id) {
  const kept = await getMeta(PAGES_KEY).catch(() => null);
  const user = tokenUser(getToken());
  return (user && kept?.user === user && kept.pages[id]) || null;
}

/** The page just read online (`task` with its events, `household` or null): kept while the
 * task is the signed-in user's, else forgotten (reassigned meanwhile). */
export function keepPage(task, household) {
  const user = tokenUser(getToken());
  if (!user) return Promise.resolve();
  return changePages(user, (pages) => {
    if (mine(task, user)) pages[task.id] = { task, household: door(household), readAt: Date.now() };
    else delete pages[task.id];
    return pages;
  });
}

/**
 * Keep the pages of `tasks` (the signed-in user's open tasks as the list read them): each read
 * again when it changed since it was kept, the others' pages forgotten. The first read that
 * gets no answer ends the pass (the next would get none either): those left keep what they
 * had. One pass at a time.
 */
export const keepMyPages = oneAtATime(async (tasks) => {
  const user = tokenUser(getToken());
  if (!user) return;
  const listed = tasks.filter((task) => mine(task, user)).slice(0, PAGES_LIMIT);
  const had = (await getMeta(PAGES_KEY).catch(() => null)) || {};
  const old = had.user === user ? had.pages : {};
  for (const item of listed) {
    if (old[item.id]?.task.updated_at === item.updated_at) continue;
    let task;
    let household = null;
    try {
      task = await api(`/api/v1/tasks/${encodeURIComponent(item.id)}`);
      if (task.household_id) household = await api(`/api/v1/households/${task.household_id}`).catch(() => null);
    } catch (error) {
      if (noAnswer(error)) break;
      continue; // gone, or no longer the caller's: forgotten below unless listed again
    }
    await keepPage(task, household);
  }
  const ids = new Set(listed.map((task) => String(task.id)));
  await changePages(user, (pages) => Object.fromEntries(Object.entries(pages).filter(([id]) => ids.has(id))));
});
