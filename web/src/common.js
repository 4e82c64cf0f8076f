// Shared by the map, the app and the accounts page: signing in and out, API calls, ISO weeks, the language.
import { META, getMeta, run } from "./idb.js";
import { getToken, refreshAccess, signingOutNow, storeTokens, tokenUser } from "./session.js";

export { getToken };
export const config = window.GRIDWORK_CONFIG || {};
const LANG_KEY = "gridwork.lang";
export const HOUSEHOLDS_KEY = "gridwork.households"; // the app's cached household list
export const HOUSEHOLDS_USER_KEY = "gridwork.households.user"; // the user that list was read for
export const DEVICE_KEY = "gridwork.device"; // the app's web push device id
export const TASKS_KEY = "gridwork.tasks"; // the app's last fetched task list, for offline use
export const PLAN_KEY = "gridwork.plan"; // the app's last read week's plan, for offline use
export const GRID_TASKS_KEY = "gridwork.gridTasks"; // a leader's grid tasks as last read, for offline use
export const INBOX_KEY = "inbox"; // the app's last read notices, for offline use (IndexedDB, META)
export const INBOX_ACKS_KEY = "inboxAcks"; // notices read offline, to acknowledge once online ({user, ids})

export async function signIn(username, password) {
  const response = await fetch("/api/v1/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  const body = await response.json().catch(() => ({}));
  // With its status: a 401 is a wrong username or password, a 429 a throttle to wait out.
  if (!response.ok) throw new ApiError(response.status, body);
  await storeTokens(body.access_token, body.refresh_token);
  return body;
}

const SWITCHED_OFF = {
  zh: "此账号已停用：请联系社区管理员重新启用。",
  en: "This account is switched off: ask your community admin to switch it on.",
};

/** What a failed sign-in tells its user. Only a 401 is a wrong password (`badLogin`): a
 * throttle (429) refuses the right one too, and an outage is no fault of theirs (`failed`, then
 * the server's words). The right password of an account switched off says so (403
 * `account-switched-off`), not "wrong password": its owner asks the admin instead of guessing
 * on into the throttle. */
export function signInFailure(error, lang, { badLogin, failed }) {
  if (error.status === 401) return badLogin;
  if (error.status === 403 && String(error.body?.type || "").endsWith("/account-switched-off")) {
    return SWITCHED_OFF[lang] || SWITCHED_OFF.zh;
  }
  return failed + error.message;
}

/**
 * Sign out, from any page: the server revokes this token and its session and stops pushes to
 * this browser (its device, as the app registered it: {device_id}, else {token}, its push
 * subscription's endpoint), the browser lets go of its push subscription, then the token and
 * the cached personal data are forgotten here. Best effort on the server: offline, the
 * sign-out is kept to be sent once back, and the token is forgotten all the same.
 *
 * The token is the origin's, so a sign-out on an office page signs the app out too. Only the
 * app's 退出 let go of the subscription and named the device: signed out on /map or /accounts,
 * the browser stayed subscribed, and pushes (a task's title, a resident's address) kept coming
 * to a browser nobody was signed in on.
 */
export async function signOut() {
  signingOutNow(); // a 401 meanwhile is this sign-out's, not a session ended elsewhere
  const subscriptions = await pushSubscriptions();
  const device = Number(localStorage.getItem(DEVICE_KEY)) || null;
  const endpoint = subscriptions[0]?.endpoint;
  const body = device ? { device_id: device } : endpoint ? { token: endpoint } : {};
  // Let go at once, with or without a signal (the push service is told when it can be).
  const lettingGo = letGoOfPush(subscriptions);
  const access = getToken();
  if (access) {
    const refresh = await getMeta("refresh").catch(() => null);
    try {
      await api("/api/v1/auth/logout", { method: "POST", body });
    } catch (error) {
      // No answer (no signal, the server away): kept to send once back (the token had ended: done).
      if (!(error instanceof ApiError) || error.status >= 500) keepSignOut({ access, refresh, body });
    }
  }
  await lettingGo;
  await forgetSignIn();
}

/** Let go of this browser's push subscriptions (`held`, else all it holds): a sign-out, and
 * 退出所有设备, whose sign-ins have all ended; kept, the next one to sign in on this browser with
 * notifications allowed had it registered for them again, unasked. */
export async function letGoOfPush(held = null) {
  const subscriptions = held ?? (await pushSubscriptions());
  return Promise.all(subscriptions.map((subscription) => subscription.unsubscribe().catch(() => false)));
}

/** The push subscriptions this browser holds for the app's origin (the app's service worker
 * holds it, at /app: a page outside its scope, /map say, finds it among the registrations). */
async function pushSubscriptions() {
  const registrations = (await navigator.serviceWorker?.getRegistrations().catch(() => [])) || [];
  const held = await Promise.all(registrations.map((r) => r.pushManager?.getSubscription().catch(() => null)));
  return held.filter(Boolean);
}

// A sign-out the server never heard (no signal in a basement, the server restarting): the phone
// forgot its tokens, but the sign-in stayed live for its 30 days and the phone went on getting
// the worker's pushes (a task's title on the lock screen of a phone handed on), listed on their
// other phone as getting them. Kept here, with what it needs to be sent (the access token, else
// the refresh token for a fresh one), and sent by whichever page of the app opens next online,
// and when the network comes back: then forgotten, with its tokens.
const SIGN_OUTS_KEY = "gridwork.signOuts";
const SIGN_OUTS_KEPT = 5;

function keptSignOuts() {
  try {
    const kept = JSON.parse(localStorage.getItem(SIGN_OUTS_KEY) || "[]");
    return Array.isArray(kept) ? kept : [];
  } catch {
    return [];
  }
}
function writeSignOuts(list) {
  try {
    if (list.length) localStorage.setItem(SIGN_OUTS_KEY, JSON.stringify(list.slice(-SIGN_OUTS_KEPT)));
    else localStorage.removeItem(SIGN_OUTS_KEY);
  } catch { /* no room: as before, the sign-in ends at its expiry */ }
}
function keepSignOut(signOut) {
  writeSignOuts([...keptSignOuts(), signOut]);
}

/** Send one kept sign-out: true once the server has it, or it has nothing to end (its
 * sign-in over already); false when it got no answer (try again later). */
async function sendSignOut({ access, refresh, body }) {
  const post = (path, token, data) => fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: data === undefined ? undefined : JSON.stringify(data),
  });
  let answer = access ? await post("/api/v1/auth/logout", access, body || {}) : null;
  if ((!answer || answer.status === 401) && refresh) {
    // The access token expired meanwhile: the refresh token gets a fresh one of the same sign-in.
    const refreshed = await post("/api/v1/auth/refresh", refresh);
    if (refreshed.status === 401 || refreshed.status === 422) return true; // the sign-in is over
    if (!refreshed.ok) return false;
    const fresh = await refreshed.json();
    answer = await post("/api/v1/auth/logout", fresh.access_token, body || {});
  }
  return Boolean(answer) && answer.status < 500;
}

let sendingSignOuts = null;
/** Send the sign-outs kept on this device (online only; one pass at a time). */
export function sendSignOuts() {
  if (sendingSignOuts || !navigator.onLine || !keptSignOuts().length) return sendingSignOuts;
  sendingSignOuts = (async () => {
    for (const kept of keptSignOuts()) {
      const sent = await sendSignOut(kept).catch(() => false);
      if (!sent) break; // no answer: the next would get none either
      writeSignOuts(keptSignOuts().filter((k) => k.access !== kept.access || k.refresh !== kept.refresh));
    }
  })().finally(() => { sendingSignOuts = null; });
  return sendingSignOuts;
}
if (typeof window !== "undefined") {
  addEventListener("online", () => sendSignOuts());
  sendSignOuts();
}

/** Keep a list as last read for offline use (localStorage `key`: `copy` with its `user` and
 * the time), or nothing when the device has no room: the fresh list is shown all the same. */
export function keepCopy(key, user, copy) {
  try {
    localStorage.setItem(key, JSON.stringify({ ...copy, user, at: Date.now() }));
  } catch { /* no room, or storage refused: no copy */ }
}

/** The copy kept under `key` for `user` ({..., at}), or null (none, another's, unreadable). */
export function keptCopy(key, user) {
  try {
    const saved = JSON.parse(localStorage.getItem(key) || "null");
    return saved && saved.user === user ? saved : null;
  } catch {
    return null;
  }
}

/** Forget the tokens and the cached personal data on this device (the server's side done). */
export async function forgetSignIn() {
  await storeTokens(null, null);
  localStorage.removeItem(HOUSEHOLDS_KEY);
  localStorage.removeItem(HOUSEHOLDS_USER_KEY);
  localStorage.removeItem(TASKS_KEY);
  localStorage.removeItem(PLAN_KEY);
  localStorage.removeItem(GRID_TASKS_KEY);
  localStorage.removeItem(DEVICE_KEY);
  localStorage.removeItem(PENDING_KEYS);
  await forgetInbox();
}

/** Forget the notices the app kept for offline use (best effort: storage may be refused). */
export function forgetInbox() {
  return run(META, "readwrite", (store) => {
    store.delete(INBOX_KEY);
    store.delete(INBOX_ACKS_KEY);
  }).catch(() => {});
}

// A task's words, shared by the pages that show tasks (the app, the window, the map, the
// deadlines card, what recurs): its states, urgencies, request types and sources.
export const TASK_TEXT = {
  zh: {
    statuses: {
      new: "新建", dispatched: "已派单", accepted: "已接单", in_progress: "处理中", resolved: "已办结",
      callback: "回访中", closed: "已关闭", returned: "已退回", escalated: "已升级", reopened: "已重启",
      transferred: "已改派",
    },
    urgencies: { danger: "危及生命财产", utility: "水电气热", general: "一般", complex: "疑难复杂" },
    types: { consultation: "咨询", help: "求助", complaint: "投诉", report: "举报", suggestion: "建议" },
    sources: { hotline: "12345热线", window: "窗口", visit: "走访", proactive: "巡查", leader: "网格长" },
    actions: {
      accept: "接单", start: "开始处理", resolve: "办结", return: "退回", escalate: "上报",
      callback: "记录回访", close: "关闭任务", reopen: "重启", assign: "改派", move: "移交网格",
    },
    lists: { need: "需求清单", problem: "问题清单" },
    hours: (h) => `${h}小时`, days: (d) => `${d}天`,
    // An urgency with the time a task of it is given (`deadlineSpan`), as a form offers it.
    urgencyDue: {
      danger: (span) => `危及生命财产（${span}内反馈）`, utility: (span) => `水电气热（${span}）`,
      general: (span) => `一般（${span}）`, complex: (span) => `疑难复杂（${span}）`,
    },
  },
  en: {
    statuses: {
      new: "new", dispatched: "dispatched", accepted: "accepted", in_progress: "in progress",
      resolved: "resolved", callback: "callback", closed: "closed", returned: "returned",
      escalated: "escalated", reopened: "reopened", transferred: "transferred",
    },
    urgencies: { danger: "Danger to life or property", utility: "Water, power, gas, heating", general: "General", complex: "Complex" },
    types: { consultation: "Consultation", help: "Help", complaint: "Complaint", report: "Report", suggestion: "Suggestion" },
    sources: { hotline: "12345 hotline", window: "window", visit: "visit", proactive: "rounds", leader: "leader" },
    actions: {
      accept: "Accept", start: "Start", resolve: "Resolve", return: "Return", escalate: "Escalate",
      callback: "Record the callback", close: "Close the task", reopen: "Reopen", assign: "Reassign", move: "Move",
    },
    lists: { need: "need list", problem: "problem list" },
    hours: (h) => `${h} h`, days: (d) => (d === 1 ? "1 day" : `${d} days`),
    urgencyDue: {
      danger: (span) => `Danger to life or property (${span})`, utility: (span) => `Water, power, gas, heating (${span})`,
      general: (span) => `General (${span})`, complex: (span) => `Complex (${span})`,
    },
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/**
 * Call the API as the signed-in user. A call refused with 401 (the access token expired) is sent
 * once more with a refreshed token; when the session itself is over, the page gets the
 * "gridwork:session-ended" event and the call fails with the 401.
 */
export async function api(path, options = {}) {
  return (await call(path, options)).data;
}

/** A new `Idempotency-Key`: 128 random bits in hex after `prefix`. (crypto.randomUUID needs a
 * secure context: the hall's PC may reach the server over plain http.) */
export function newIdempotencyKey(prefix = "web") {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// The key of each intended action sent and not yet answered: "METHOD path\nonce\nbody" -> key.
// Kept on the phone too (localStorage, PENDING_KEYS), under a hash of the action and the user:
// in the page only, a reload after a lost answer (the worker thought the app stuck) forgot it,
// and the same step pressed again went with a new key: a second leave, or a 409 for what the
// first had done. A hash, not the action: its body may be a leave's reason or a resident's
// words, which need not wait on the phone. Forgotten once answered, at sign-out, and after the
// 24 hours the server keeps a key's answer (sent later, the key would be a new one anyway).
const unanswered = new Map();
export const PENDING_KEYS = "gridwork.pendingKeys";
const PENDING_KEPT_MS = 24 * 3600 * 1000;

/** A 53-bit hash of `text` in hex (cyrb53): the page may be plain http, without crypto.subtle. */
function hashOf(text) {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16);
}

/** The kept keys, those past their 24 hours left out. */
function readPending(now = Date.now()) {
  let kept = {};
  try { kept = JSON.parse(localStorage.getItem(PENDING_KEYS) || "{}") || {}; } catch { /* unreadable: none */ }
  return Object.fromEntries(Object.entries(kept).filter(([, v]) => v && typeof v.key === "string" && now - v.at < PENDING_KEPT_MS && v.at <= now));
}
function writePending(kept) {
  try {
    if (Object.keys(kept).length) localStorage.setItem(PENDING_KEYS, JSON.stringify(kept));
    else localStorage.removeItem(PENDING_KEYS);
  } catch { /* storage refused: the key waits in the page only, as before */ }
}
// Each user's own: the server keeps a key per user, and another worker's step is not a retry.
const slotOf = (action) => hashOf(`${getToken() ? tokenUser(getToken()) : ""}\n${action}`);
function pendingKey(action) {
  return unanswered.get(action) || readPending()[slotOf(action)]?.key;
}
function keepPending(action, key) {
  unanswered.set(action, key);
  const kept = readPending();
  const slot = slotOf(action);
  if (kept[slot]?.key !== key) kept[slot] = { key, at: Date.now() }; // its 24 hours from the first send
  writePending(kept);
}
function forgetPending(action) {
  unanswered.delete(action);
  const kept = readPending();
  delete kept[slotOf(action)];
  writePending(kept);
}

/**
 * `api` for a write that must be carried out once (a leave or its decision, a week generated or
 * published): sent with an `Idempotency-Key` that is kept for the same action (method, path and
 * body) until an answer comes. Sent again after a lost answer (the connection gone, a gateway's
 * 5xx), the request goes with the same key and the server gives its first answer: no second
 * leave, no 409 "already published" of what the first did; so too after a reload, the key
 * kept on the phone (PENDING_KEYS). Once answered (done, or refused and so not done), the same
 * action later is a new one, with a new key.
 */
export async function apiOnce(path, { once = "", ...options } = {}) {
  // `once`: what the action was asked of (a task's `updated_at`, say): the same step asked of
  // the record as it is later (accepted again after a re-dispatch) is another action, not a
  // retry to be answered with the first answer (kept 24 hours on the server).
  const action = `${options.method || "POST"} ${path}\n${once}\n${options.body === undefined ? "" : JSON.stringify(options.body)}`;
  const key = pendingKey(action) || newIdempotencyKey();
  keepPending(action, key);
  try {
    const data = await api(path, { ...options, headers: { ...(options.headers || {}), "Idempotency-Key": key } });
    forgetPending(action);
    return data;
  } catch (error) {
    // A 4xx is an answer: refused whole, nothing kept on the server. No answer, or a 5xx (a
    // gateway's may come after the server carried it out): the key waits for the retry.
    if (error instanceof ApiError && error.status < 500) forgetPending(action);
    throw error;
  }
}

async function call(path, options = {}) {
  const token = getToken();
  let response = await send(path, options, token);
  if (response.status === 401 && token) {
    const fresh = await refreshAccess(token).catch(() => null);
    if (fresh) response = await send(path, options, fresh);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, headers: response.headers };
}

/**
 * GET a file (a report, a photo) with the signed-in user's token, refreshed once on a 401, as a
 * Blob: an <img> or a download link cannot send the token, a blob: URL made of it can be shown.
 */
export async function apiBlob(path) {
  // Residents' photos, files: never kept in the browser's cache (a shared phone's next user).
  const get = (token) => fetch(path, { cache: "no-store", headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const token = getToken();
  let response = await get(token);
  if (response.status === 401 && token) {
    const fresh = await refreshAccess(token).catch(() => null);
    if (fresh) response = await get(fresh);
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response.blob();
}

/** Save `blob` as the file `name` (a download the browser asks no more of): a report, the register. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * One page of a paginated list: its items, the `X-Pagination` header read (flask-smorest's
 * {total, total_pages, page, previous_page, next_page, ...}; null when the server sent none) and
 * the answer's headers (the inbox's `X-Inbox-Cursor`).
 */
export async function apiPage(path, { page = 1, pageSize = 50 } = {}) {
  const sep = path.includes("?") ? "&" : "?";
  const { data, headers } = await call(`${path}${sep}page_size=${pageSize}&page=${page}`);
  let pagination = null;
  try { pagination = JSON.parse(headers.get("X-Pagination") || "null"); } catch { /* no header */ }
  return { items: data || [], pagination, headers };
}

/**
 * Every item of a paginated list: asks for `pageSize` items a page (100 by default; the API
 * takes up to 1,000, api/extensions.py MAX_PAGE_SIZE) and follows the `X-Pagination` header's
 * `next_page` until there is none. `pick` takes a page's items out of its body (a
 * FeatureCollection's `features`, say). Without the header, a short page is the last.
 */
export async function apiPages(path, { pageSize = 100, pick = (body) => body || [], maxPages = 1000 } = {}) {
  const all = [];
  const sep = path.includes("?") ? "&" : "?";
  let page = 1;
  for (let n = 0; n < maxPages && page; n++) {
    const { data, headers } = await call(`${path}${sep}page_size=${pageSize}&page=${page}`);
    const batch = pick(data);
    all.push(...batch);
    let meta = null;
    try { meta = JSON.parse(headers.get("X-Pagination") || "null"); } catch { /* no header */ }
    if (meta) page = meta.next_page && meta.next_page > page ? meta.next_page : null;
    else page = batch.length < pageSize ? null : page + 1;
  }
  return all;
}

function send(path, options, token) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  let body = options.body;
  // A form (a photo upload) goes as multipart: the browser writes its Content-Type and boundary.
  if (body !== undefined && typeof body !== "string" && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  return fetch(path, { ...options, headers, body });
}

/** The server's words for a refusal (an ApiError): its detail and the field errors it does not
 * already say. */
export function refusalWords(error) {
  const detail = error.body?.detail || error.message;
  const more = Object.values(error.body?.errors?.json || {}).flat().filter((m) => !detail.includes(m));
  return [detail, ...more].join(" ");
}

/** No answer, or one that says nothing of what was sent: the connection gone, the server
 * restarting or its gateway (5xx: it may have carried it out), a throttle (408, 429), the
 * session over (401: it goes once the worker signs in again). What the phone keeps waits and
 * goes again with its key; any other 4xx is a refusal of it. */
export const noAnswer = (error) => !(error instanceof ApiError) || !error.status || error.status >= 500
  || [401, 408, 429].includes(error.status);

/** A 409 of an `Idempotency-Key` whose request was carried out and its answer never kept
 * (api/idempotency.py): the record exists; sent again until the key expired, it made a second. */
export const carriedOut = (error) => error?.status === 409 && error.body?.idempotency_key === "carried_out";

/**
 * `pass` (an async function sending what the phone keeps) run one at a time: two at once sent
 * the same thing twice at once (the second answered 409). Asked for while one runs, it runs
 * once more after it, however often it was asked meanwhile, with what the last ask gave (the
 * first's was an older task list: the page of a task resolved meanwhile was kept again).
 */
export function oneAtATime(pass) {
  let running = null;
  let again = null;
  let latest = [];
  const start = (...args) => {
    if (!running) {
      running = pass(...args).finally(() => { running = null; });
      return running;
    }
    latest = args;
    again ??= running.catch(() => {}).then(() => {
      again = null;
      return start(...latest);
    });
    return again;
  };
  return start;
}

/** "2026-W47" for a Date, read in Asia/Shanghai (UTC+8, no DST). */
export function isoWeek(date = new Date()) {
  const local = new Date(date.getTime() + 8 * 3600 * 1000);
  const d = new Date(Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const yearStart = new Date(Date.UTC(d.getUTCFullYear(), 0, 1));
  const week = Math.ceil(((d - yearStart) / 86400000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

/** The ISO week `n` weeks after `week` ("2026-W49"; n < 0: before it). */
export function shiftWeek(week, n) {
  const [year, number] = week.split("-W").map(Number);
  const jan4 = new Date(Date.UTC(year, 0, 4)); // in week 1, by the ISO rule
  const monday = jan4.getTime() - ((jan4.getUTCDay() || 7) - 1) * 86400000;
  // Thursday noon of the week wanted, read as a Beijing date by isoWeek (it adds 8 hours).
  return isoWeek(new Date(monday + ((number - 1 + n) * 7 + 3) * 86400000 + 4 * 3600 * 1000));
}

const TIME_FORMS = {
  minute: { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false },
  short: { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false },
  full: {},
};

/**
 * `when` (a Date or an ISO string; none gives "") as every page shows a time: Beijing time
 * (Asia/Shanghai, whatever the phone's zone), in the page's language. `form` is "minute" (date
 * and time to the minute), "short" (no year: a roster's own week) or "full" (the browser's
 * own, with seconds: the moment of a visit).
 */
export function beijingTime(when, lang, form = "minute") {
  if (!when) return "";
  const date = when instanceof Date ? when : new Date(when);
  return date.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai", ...TIME_FORMS[form] });
}

/** The words the API looks up (`GET /households?address=`), as a resident says the address:
 * "3号楼2单元502" is split after each number's suffix (3号楼 2单元 502), and at spaces, commas
 * and the dashes the pages write an address with (3-2-502). */
export function addressWords(text) {
  return text
    .replace(/([0-9A-Za-z\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A]+(?:号楼|栋|幢|座|单元|层|楼|室))(?=\S)/g, "$1 ")
    .split(/[\s,，、\-－]+/)
    .filter(Boolean);
}

/** A moment as a datetime-local field holds it in Beijing time (UTC+8, no DST): "YYYY-MM-DDTHH:MM". */
export const beijingField = (when) => new Date(Date.parse(when) + 8 * 3600_000).toISOString().slice(0, 16);

/** A datetime-local field's value, read as Beijing time, with its offset as the API takes it. */
export const beijingInput = (value) => `${value.length === 16 ? `${value}:00` : value}+08:00`;

/** Today's date in Asia/Shanghai as YYYY-MM-DD. */
export function todayLocal(date = new Date()) {
  return new Date(date.getTime() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

export function pickLang() {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  if (fromUrl === "en" || fromUrl === "zh") {
    localStorage.setItem(LANG_KEY, fromUrl);
    return fromUrl;
  }
  return localStorage.getItem(LANG_KEY) || "zh";
}

/** A page's words in the language chosen (`pickLang`): the document's lang and title set, its
 * [data-t] elements translated; {lang, t}. */
export function pageWords(text) {
  const lang = pickLang();
  const t = text[lang];
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = `${t.title} · gridwork`;
  translate(document, t);
  return { lang, t };
}

export function otherLangHref(lang) {
  const url = new URL(location.href);
  url.searchParams.set("lang", lang === "zh" ? "en" : "zh");
  return url.toString();
}

/** Fill every [data-t] element's text from the dictionary. */
export function translate(root, dict) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = dict[el.dataset.t] ?? el.dataset.t;
}

/** Whether the focus fell to the page (the control that had it switched off or drawn anew). */
export const focusLost = () => !document.activeElement || document.activeElement === document.body;

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A deadline in words ("2小时", "24小时", "7天" by `t.hours` / `t.days`): whole days from two
 * on, hours below two days or not whole days (1.5 h). */
export function deadlineSpan(t, hours) {
  return hours >= 48 && hours % 24 === 0 ? t.days(hours / 24) : t.hours(Number(Number(hours).toFixed(2)));
}

// The hours to resolve a task of each urgency where the community set none: Beijing 12345
// practice (api/services/tasks.py DEFAULT_DEADLINE_HOURS). Shown until the community's are read.
// api/models/households.py CARE_TAGS, in its order, [Chinese, English] (tests/api/test_web.py
// checks the list): the roster page's cadence card and the register's tags.
export const CARE_TAGS = {
  elderly_80: ["80岁以上老人", "aged 80 and over"],
  living_alone: ["独居", "living alone"],
  low_income: ["低保", "low income"],
  disability: ["残疾", "disability"],
  migrant: ["流动人口", "migrant"],
  child_in_difficulty: ["困境儿童", "child in difficulty"],
  woman_in_difficulty: ["困境妇女", "woman in difficulty"],
  special_care: ["特殊人群", "special care"],
};

// api/models/households.py OCCUPANCIES (居住性质), in its order, [Chinese, English]
// (tests/api/test_web.py checks the list): the register's page and the app's door form.
export const OCCUPANCIES = {
  owner: ["自住", "Owner"],
  tenant: ["租住", "Tenant"],
  vacant: ["空置", "Vacant"],
};

/** A household's address as a clerk writes it: 3号楼 2单元 5层 502; in English 3-2-5-502
 * (the register's page and the window's address search). */
export function householdAddress(h, lang) {
  if (lang !== "zh") return [h.building, h.unit, h.floor, h.room].filter(Boolean).join("-");
  const parts = [/^\d+$/.test(h.building) ? `${h.building}号楼` : h.building];
  if (h.unit) parts.push(/^\d+$/.test(h.unit) ? `${h.unit}单元` : h.unit);
  if (h.floor) parts.push(/^-?\d+$/.test(h.floor) ? `${h.floor}层` : h.floor);
  if (h.room) parts.push(h.room);
  return parts.join(" ");
}

export const DEFAULT_DEADLINE_HOURS = Object.freeze({ danger: 2, utility: 24, general: 168, complex: 360 });

/** An urgency as a form offers it, with the time the task will be given: "一般（7天）".
 * `hours`: the community's for the request type (task-settings' `effective`), else the default. */
export function urgencyOption(lang, urgency, hours) {
  const words = TASK_TEXT[lang];
  return words.urgencyDue[urgency](deadlineSpan(words, hours ?? DEFAULT_DEADLINE_HOURS[urgency]));
}
