// A password an admin chose (a reset, an account the office opened) is known to the admin: its
// owner sets their own before anything else. Until then the server answers only /auth (other
// calls: 403 password-change-required), and the tokens say so (the `pwc` claim).
import { ApiError, api, otherLangHref, signIn, signInFailure, signOut } from "./common.js";
import { getToken, keepFresh, storeTokens, tokenClaims } from "./session.js";

const TEXT = {
  zh: {
    ownPasswordWhy: "您的密码是管理员设置的。请先设置只有您自己知道的新密码。",
    ownPasswordChange: "设置新密码。修改后，您在其他设备上的登录将退出。",
    currentPassword: "当前密码", newPassword: "新密码（至少8位）", repeatPassword: "再次输入新密码",
    setPassword: "设置新密码", mismatch: "两次输入的新密码不一致", sameAsCurrent: "新密码不能与当前密码相同",
    tooShort: "新密码至少8个字符（空格不计）", wrongCurrent: "当前密码不正确", signOut: "退出（不是我的账号）",
  },
  en: {
    ownPasswordWhy: "An admin set your password. Set a new one only you know first.",
    ownPasswordChange: "Set a new password. Your sign-ins on other devices end with the change.",
    currentPassword: "Current password", newPassword: "New password (8 characters or more)",
    repeatPassword: "New password again", setPassword: "Set my password",
    mismatch: "The two new passwords differ", sameAsCurrent: "The new password must differ from the current one",
    tooShort: "The new password needs 8 characters or more, spaces not counted", wrongCurrent: "The current password is wrong",
    signOut: "Sign out (not my account)",
  },
};
const MIN_LENGTH = 8;
// What the server counts as a space (Python's str.isspace): JavaScript's \s misses 1C-1F and 85,
// and takes FEFF, which the server counts as a character.
const SPACE = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

/**
 * A password's length as the server's rule counts it (api/services/users.py `password_length`):
 * characters (code points, not UTF-16 units: an emoji is one), spaces not counted. Counted in
 * UTF-16 units, four emoji passed the form and the server refused them.
 */
export function passwordLength(password) {
  let length = 0;
  for (const character of password) if (!SPACE.test(character)) length += 1;
  return length;
}

/** The signed-in user must set their own password before anything else. */
export function mustChangePassword(token = getToken()) {
  return tokenClaims(token).pwc === true;
}

const FORM = `
  <p data-t="ownPasswordWhy"></p>
  <label><span data-t="currentPassword"></span><input name="current" type="password" autocomplete="current-password"></label>
  <label><span data-t="newPassword"></span><input name="next" type="password" autocomplete="new-password" required></label>
  <label><span data-t="repeatPassword"></span><input name="again" type="password" autocomplete="new-password" required></label>
  <button type="submit" data-t="setPassword"></button>
  <button type="button" class="own-password-signout" data-t="signOut" hidden></button>
  <p class="error"></p>`;

/**
 * Ask for a new password in a form (`#own-password`, of `className`, put first in `parent`)
 * until the server takes it; resolves once the new tokens are stored and the form is gone.
 * `current`: the password just typed to sign in (its field is then not asked again). `why`: the
 * text above the form, `ownPasswordWhy` (the office chose the password) or `ownPasswordChange`.
 * `signOutHere`: the form offers 退出 (ending the session on the server, the page reloaded to
 * its sign-in form), where the page shows none of its own while it asks: the office opens its
 * accounts with one password, and who typed a colleague's username could only set that
 * account's password, locking its owner out.
 */
export function askForOwnPassword(
  lang, current = "",
  { className = "panel signin", parent = document.body, why = "ownPasswordWhy", signOutHere = false } = {},
) {
  const t = TEXT[lang] || TEXT.zh;
  const form = document.createElement("form");
  form.id = "own-password";
  form.className = className;
  form.innerHTML = FORM;
  for (const el of form.querySelectorAll("[data-t]")) el.textContent = t[el.dataset.t];
  form.querySelector("p").textContent = t[why];
  const error = form.querySelector(".error");
  const currentField = form.elements.current;
  currentField.value = current;
  currentField.closest("label").hidden = Boolean(current);
  const leave = form.querySelector(".own-password-signout");
  leave.hidden = !signOutHere;
  leave.addEventListener("click", () => signOutAndReload());
  parent.prepend(form);
  return new Promise((resolve) => {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const { value: now } = currentField;
      const next = form.elements.next.value;
      error.textContent = "";
      if (passwordLength(next) < MIN_LENGTH) error.textContent = t.tooShort;
      else if (next !== form.elements.again.value) error.textContent = t.mismatch;
      else if (next === now) error.textContent = t.sameAsCurrent;
      if (error.textContent) return;
      try {
        const body = await api("/api/v1/auth/password", {
          method: "POST",
          body: { current_password: now, new_password: next },
        });
        await storeTokens(body.access_token, body.refresh_token);
      } catch (failure) {
        const wrong = failure instanceof ApiError && failure.status === 403;
        if (wrong) currentField.closest("label").hidden = false;
        error.textContent = wrong ? t.wrongCurrent : failure.message;
        return;
      }
      form.remove();
      resolve();
    });
  });
}

/**
 * A page's sign-in form (/map, /accounts, /window): signs in and starts the page, having a
 * password an admin chose replaced by the user's own first (until then the server answers
 * nothing else; `password` is the one just typed, not asked again). A failure is said as
 * `signInFailure` words it (`badLogin` only for a 401). Returns `begin`, to start a page
 * whose user is signed in already.
 */
export function wireSignIn({ form, error, lang, badLogin, failed, start }) {
  const begin = async (password = "") => {
    if (mustChangePassword()) await askForOwnPassword(lang, password, { signOutHere: true });
    start();
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    try {
      await signIn(data.get("username"), data.get("password"));
    } catch (failure) {
      error.textContent = signInFailure(failure, lang, { badLogin, failed });
      return;
    }
    form.hidden = true;
    // Not left in the hidden form: a sign-in ended later shows it again, and 登录 would send it.
    form.elements.password.value = "";
    begin(data.get("password"));
  });
  return begin;
}

/**
 * An office page's first steps once signed in (/register, /audit): its #toolbar and #main
 * shown, the #lang link, the token kept fresh, and who is signed in (`GET /auth/me`). Null when
 * that failed: a 401 loads the page again at its sign-in form, another failure is `fail`'s.
 */
export async function openPage({ lang, t, fail }) {
  document.getElementById("toolbar").hidden = false;
  document.getElementById("main").hidden = false;
  const link = document.getElementById("lang");
  link.textContent = t.other;
  link.href = otherLangHref(lang);
  keepFresh();
  try {
    return await api("/api/v1/auth/me");
  } catch (error) {
    if (error.status === 401) signOutAndReload();
    else fail(error);
    return null;
  }
}

/** Sign out (the server's side too) and load the page again, at its sign-in form. */
export async function signOutAndReload() {
  await signOut();
  location.reload();
}

/**
 * The boot of an office page (/window, /reports, /rosters): 退出 signs out and reloads it, a
 * session ended elsewhere reloads it to the sign-in form (or calls `sessionEnded`, a page that
 * keeps what was typed in it: `start` is then called again once signed in), the form's
 * language link, and `start` once signed in (`wireSignIn`; at once when signed in already).
 * Its elements: #signout, #signin, #signin-error, #signin-lang; `t` its words (`other`,
 * `badLogin`, `signinFailed`).
 */
export function bootPage({ lang, t, start, sessionEnded = () => location.reload() }) {
  const $ = (id) => document.getElementById(id);
  addEventListener("gridwork:session-ended", sessionEnded);
  $("signout").addEventListener("click", (e) => {
    e.preventDefault();
    signOutAndReload();
  });
  $("signin-lang").textContent = t.other;
  $("signin-lang").href = otherLangHref(lang);
  const form = $("signin");
  const begin = wireSignIn({
    form, error: $("signin-error"), lang, badLogin: t.badLogin, failed: t.signinFailed, start,
  });
  if (getToken()) begin();
  else form.hidden = false;
}
