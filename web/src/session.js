// The signed-in session: the access and refresh tokens, kept fresh for the pages and the service worker.
//
// The access token lives an hour; a worker's day in the field is longer, and visits queued
// offline must still go out. So a call answered 401 exchanges the refresh token for new tokens
// and is sent once more. The tokens are kept in IndexedDB (the service worker syncs the queue
// with the page closed and has no localStorage) and the access token also in localStorage, for
// the pages' synchronous reads. Refresh tokens are single-use: the server revokes the whole
// session when one is presented twice. So every refresh, in any page or the service worker,
// runs under one Web Lock and first re-reads the stored tokens: whoever waited behind another
// refresh takes its result instead of presenting the already used refresh token. A sign-out or
// a sign-in takes no lock: a refresh answered after one keeps nothing (`keepRefreshed`).

import { META, getMeta, run } from "./idb.js";

export const TOKEN_KEY = "gridwork.token";
const LOCK = "gridwork.refresh";
// Why the sign-in ended, as the server said it (its problem's `session_ended`: "password-reset",
// "switched-off", "password-changed", ...), kept for whichever realm finds the tokens gone: the
// service worker's sync is told, with no page to tell, and the page then finds no refresh token.
const ENDED_KEY = "sessionEnded";
const hasWindow = typeof localStorage !== "undefined";

/** The refresh failed because the session is over (revoked, expired or never refreshable): sign in again. */
export class SessionEnded extends Error {}

/** A JWT's claims, or {} when it is not one. */
export function tokenClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)) || {};
  } catch {
    return {};
  }
}

/** The user id (the JWT's `sub`) a token was issued to, or null. */
export function tokenUser(token) {
  return String(tokenClaims(token).sub ?? "") || null;
}

function live(token, marginMs = 5000) {
  const { exp } = tokenClaims(token);
  return typeof exp === "number" && exp * 1000 > Date.now() + marginMs;
}

/** The page's access token (synchronous; null in the service worker). */
export function getToken() {
  return hasWindow ? localStorage.getItem(TOKEN_KEY) : null;
}

/** The device keeps nothing in IndexedDB (a private window, storage turned off): no tokens for
 * the service worker, no queue for visits recorded offline. */
export class StorageUnavailable extends Error {}

let signingOut = false; // see signingOutNow

/** Keep new tokens everywhere they are read (null, null: forget them). Throws StorageUnavailable
 * when IndexedDB refuses them (forgetting them, nothing is there to forget). */
export async function storeTokens(access, refresh) {
  if (access) signingOut = false; // signed in again
  if (hasWindow) {
    if (access) localStorage.setItem(TOKEN_KEY, access);
    else localStorage.removeItem(TOKEN_KEY);
  }
  try {
    // Both in one transaction: an end of another sign-in (`forgetTokensOf`) finds them both or neither.
    await run(META, "readwrite", (store) => {
      if (access) store.put(null, ENDED_KEY); // why the last sign-in ended: past
      store.put(access ?? null, "token");
      store.put(refresh ?? null, "refresh");
    });
  } catch (error) {
    if (access || refresh) throw new StorageUnavailable(error?.message || String(error));
  }
}

function locked(work) {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  return locks ? locks.request(LOCK, work) : work();
}

/**
 * A fresh access token in place of `stale`, the one a call was just refused with. Throws
 * SessionEnded when the server refuses the refresh (the tokens are then forgotten, the queue
 * is kept), any other error when the server cannot be asked now (offline, 5xx: try later).
 */
export function refreshAccess(stale) {
  return locked(async () => {
    const current = await getMeta("token");
    if (current && current !== stale && tokenUser(current) === tokenUser(stale) && live(current)) {
      if (hasWindow) localStorage.setItem(TOKEN_KEY, current); // refreshed meanwhile, elsewhere
      return current;
    }
    const refresh = await getMeta("refresh");
    if (!refresh || tokenUser(refresh) !== tokenUser(stale)) throw await ended(stale);
    const response = await fetch("/api/v1/auth/refresh", {
      method: "POST",
      headers: { Accept: "application/json", Authorization: `Bearer ${refresh}` },
    });
    if (response.status === 401 || response.status === 422) {
      const problem = await response.json().catch(() => null);
      throw await ended(stale, problem?.session_ended);
    }
    if (!response.ok) throw new Error(`refresh answered ${response.status}`);
    const body = await response.json();
    const kept = await keepRefreshed(stale, refresh, body.access_token, body.refresh_token);
    if (kept) return kept;
    // Signed out, or signed in again, while the refresh was on its way: its tokens are dropped
    // and its caller's call is not sent again. Nothing is said: the page's own sign-out or
    // sign-in is the news, and a session-ended event told now would act on the next sign-in's
    // page (forgetting its inbox kept on the phone).
    throw Object.assign(new SessionEnded("The sign-in has ended: sign in again."), { why: null, user: tokenUser(stale) });
  });
}

/** `token` is still of the sign-in of `stale`: the same user and session. */
function ofSignIn(token, stale) {
  return Boolean(token) && tokenUser(token) === tokenUser(stale) && sameSignIn(token, stale);
}

/**
 * Keep the tokens a refresh (of the sign-in of `stale`, with the refresh token `used`) brought:
 * their access token, or null when the phone was signed out or signed in again meanwhile.
 *
 * Kept only while `used` is still the stored refresh token, read in the very transaction that
 * writes, and, in a page, while the page's token is still of that sign-in. A sign-out or a
 * sign-in does not wait for the refresh lock: one made while a refresh was on its way (a weak
 * signal, a slow server) was overwritten when its answer came, and the phone held the signed-out
 * worker's tokens again (revoked on the server, but the service worker took the phone for
 * signed in and showed pushes' words), or the first worker's tokens in place of the next's.
 */
async function keepRefreshed(stale, used, access, refresh) {
  const outcome = await run(META, "readwrite", (store) => {
    const found = { kept: false };
    const held = store.get("refresh");
    held.onsuccess = () => {
      // A sign-out or a sign-in writes the page's token first, then IndexedDB.
      if (held.result !== used || (hasWindow && !ofSignIn(getToken(), stale))) return;
      store.put(access, "token");
      store.put(refresh, "refresh");
      found.kept = true;
    };
    return found;
  }).catch((error) => {
    throw new StorageUnavailable(error?.message || String(error));
  });
  if (!outcome.kept) return null;
  if (!hasWindow) return access;
  // Signed out or in since the check: that one's own write to IndexedDB comes after this one's.
  if (!ofSignIn(getToken(), stale)) return null;
  localStorage.setItem(TOKEN_KEY, access);
  return access;
}

// Signing out (`common.js` signOut): a request answered 401 meanwhile is no session ended
// elsewhere. Told so, the page reloaded while the sign-out's own reload was under way (the
// first navigation aborted); the next sign-in clears it (`storeTokens`).
export function signingOutNow() {
  signingOut = true;
}

/** `token` is of the sign-in `stale` was (its session id); a token without one, as before sign-in
 * sessions, is taken to be. */
function sameSignIn(token, stale) {
  const { sid } = tokenClaims(stale);
  return !sid || tokenClaims(token).sid === sid;
}

/** Forget the stored tokens if they are the sign-in of `stale`, and keep why it ended (`why`)
 * with them. {theirs: they were (or none were stored), kept: why it ended as kept before}.
 * Another sign-in's are left be. */
async function forgetTokensOf(stale, why) {
  let outcome = { theirs: true, kept: null };
  try {
    // Read and forgotten in one transaction: a sign-in stored meanwhile is either found here
    // (and left be) or stored after.
    outcome = await run(META, "readwrite", (store) => {
      const found = { theirs: true, kept: null };
      const token = store.get("token");
      const refresh = store.get("refresh");
      const kept = store.get(ENDED_KEY);
      kept.onsuccess = () => {
        found.theirs = [token.result, refresh.result].every((held) => !held || sameSignIn(held, stale));
        found.kept = kept.result ?? null;
        if (!found.theirs) return;
        store.put(null, "token");
        store.put(null, "refresh");
        if (why) store.put({ why, user: tokenUser(stale) }, ENDED_KEY);
      };
      return found;
    });
  } catch { /* IndexedDB refused: nothing is kept there to forget */ }
  if (hasWindow) {
    const page = getToken();
    if (page && !sameSignIn(page, stale)) outcome.theirs = false; // signed in meanwhile, its write on its way
    else if (outcome.theirs) localStorage.removeItem(TOKEN_KEY);
  }
  return outcome;
}

/** Forget the tokens and tell the page the sign-in of `stale` ended (`why`: the server's word,
 * else the one kept when another realm was told). The event's detail: {why, user}.
 *
 * Only while the tokens stored are still that sign-in's: a call made under it may be answered
 * after the phone is signed in again (a reply held up on a weak signal, a slow server, a sync
 * of the service worker), and its end forgot the new sign-in's tokens and put the sign-in form
 * back over the app just opened. The caller is told all the same: its call was the old one's. */
async function ended(stale, why = null) {
  const user = tokenUser(stale);
  const { theirs, kept } = await forgetTokensOf(stale, why);
  if (!why && kept && kept.user === user) why = kept.why;
  const detail = { why: why || null, user };
  if (theirs && hasWindow && !signingOut) dispatchEvent(new CustomEvent("gridwork:session-ended", { detail }));
  return Object.assign(new SessionEnded("The sign-in has ended: sign in again."), detail);
}

let timer = null;

/** Half a token's life as the server gave it (exp - iat), in ms; 30 minutes if it does not say. */
function halfLife(token) {
  const { exp, iat } = tokenClaims(token);
  return typeof exp === "number" && typeof iat === "number" && exp > iat ? (exp - iat) * 500 : 30 * 60_000;
}

/**
 * Refresh the page's access token a minute before it expires, for as long as the page is open:
 * the map's tiles and the app's calls then never meet an expired token. (A computer waking from
 * sleep may fire the timer late: the calls' own refresh on 401 covers that.)
 *
 * After a refresh, the next one waits at least half the new token's life (`floorMs`): the expiry
 * is read on this device's clock, and a phone set to the wrong zone runs hours ahead, so every
 * token the server gives looks expired on arrival -- refreshed at once, again and again.
 */
export function keepFresh(floorMs = 0) {
  clearTimeout(timer);
  const token = getToken();
  const { exp } = tokenClaims(token);
  if (!token || typeof exp !== "number") return;
  const wait = Math.max(exp * 1000 - Date.now() - 60_000, floorMs, 0);
  timer = setTimeout(async () => {
    try {
      keepFresh(halfLife(await refreshAccess(token)));
    } catch (error) {
      if (!(error instanceof SessionEnded)) timer = setTimeout(keepFresh, 60_000); // offline: later
    }
  }, Math.min(wait, 2 ** 31 - 1));
}
