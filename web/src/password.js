// A password an admin chose (a reset, an account the office opened) is known to the admin: its
// owner sets their own before anything else. Until then the server answers only /auth (other
// calls: 403 password-change-required), and the tokens say so (the `pwc` claim).
import { ApiError, api } from "./common.js";
import { getToken, storeTokens, tokenClaims } from "./session.js";

const TEXT = {
  zh: {
    ownPasswordWhy: "您的密码是管理员设置的。请先设置只有您自己知道的新密码。",
    currentPassword: "当前密码", newPassword: "新密码（至少8位）", repeatPassword: "再次输入新密码",
    setPassword: "设置新密码", mismatch: "两次输入的新密码不一致", sameAsCurrent: "新密码不能与当前密码相同",
    tooShort: "新密码至少8位", wrongCurrent: "当前密码不正确",
  },
  en: {
    ownPasswordWhy: "An admin set your password. Set a new one only you know first.",
    currentPassword: "Current password", newPassword: "New password (8 characters or more)",
    repeatPassword: "New password again", setPassword: "Set my password",
    mismatch: "The two new passwords differ", sameAsCurrent: "The new password must differ from the current one",
    tooShort: "The new password needs 8 characters or more", wrongCurrent: "The current password is wrong",
  },
};
const MIN_LENGTH = 8;

/** The signed-in user must set their own password before anything else. */
export function mustChangePassword(token = getToken()) {
  return tokenClaims(token).pwc === true;
}

/**
 * Show `form` (inputs `current`, `next`, `again`, a `.error` paragraph, a submit button; texts by
 * `data-t`) until the server takes a new password; resolves once the new tokens are stored.
 * `current`: the password just typed to sign in (its field is then not asked again).
 */
export function askForOwnPassword(form, lang, current = "") {
  const t = TEXT[lang] || TEXT.zh;
  for (const el of form.querySelectorAll("[data-t]")) el.textContent = t[el.dataset.t] ?? el.textContent;
  const error = form.querySelector(".error");
  const currentField = form.elements.current;
  currentField.value = current;
  currentField.closest("label").hidden = Boolean(current);
  form.hidden = false;
  return new Promise((resolve) => {
    const submit = async (e) => {
      e.preventDefault();
      const { value: now } = currentField;
      const next = form.elements.next.value;
      error.textContent = "";
      if (next.length < MIN_LENGTH) error.textContent = t.tooShort;
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
      form.removeEventListener("submit", submit);
      form.reset();
      form.hidden = true;
      resolve();
    };
    form.addEventListener("submit", submit);
  });
}
