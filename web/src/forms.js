// A form's refusals said beside the fields they name: the office pages' forms (accounts,
// register). A 422's `errors` ({json: {field: [...]}} from marshmallow, {field: why} from a
// service) go into the form's `.field-error[data-field=...]` slots, what names no shown field
// (and a refusal naming none) into its `.form-error`.
//
// On the Chinese page, marshmallow's messages (and a page's own, `extra`) are said in Chinese:
// they stood in English beside Chinese labels. A message not in the lists is shown as the
// server wrote it.
const FIELD_MESSAGES_ZH = [
  [/^Length must be between (\d+) and (\d+)\.$/, (min, max) => `须为 ${min} 至 ${max} 个字符。`],
  [/^Shorter than minimum length (\d+)\.$/, (min) => `至少 ${min} 个字符。`],
  [/^Longer than maximum length (\d+)\.$/, (max) => `最多 ${max} 个字符。`],
  [/^Missing data for required field\.$/, () => "必填。"],
  [/^Field may not be null\.$/, () => "不能为空。"],
  [/^Not a valid (string|list|integer|boolean|number|date)\.$/, () => "格式不正确。"],
  [/^Must be one of: (.*)\.$/, (choices) => `须为以下之一：${choices}。`],
  [/^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$/, (min, max) => `须在 ${min} 至 ${max} 之间。`],
  [/^Must not contain control characters or bidirectional overrides\.$/, () => "含有不能保存的控制字符。"],
  [/^Unknown field\.$/, () => "未知字段。"],
];

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
  for (const el of form.querySelectorAll(".led-errors")) {
    el.innerHTML = "";
    el.hidden = true;
  }
}

/** A server's message in the page's words: the first of `patterns` ([regexp, say] pairs) it
 * matches, said by `say(...groups)`; in English, or matching none, as the server wrote it. */
export function wordsFor(lang, patterns) {
  return (message) => {
    if (lang !== "zh") return message;
    for (const [pattern, say] of patterns) {
      const match = pattern.exec(message);
      if (match) return say(...match.slice(1));
    }
    return message;
  };
}

/** The page's helpers for `lang`, its own messages (`extra`: [pattern, say] pairs) first. */
export function fieldWords(lang, extra = []) {
  const fieldMessage = wordsFor(lang, [...extra, ...FIELD_MESSAGES_ZH]);

  /** {field: "message"} from a problem's `errors` ({json: {field: [...]}} or {field: {code: why}}). */
  function fieldErrors(body, sent = {}) {
    let errors = body?.errors;
    if (!errors || typeof errors !== "object" || Array.isArray(errors)) return {};
    if (errors.json && typeof errors.json === "object") errors = errors.json;
    const text = (value, field) => {
      if (value == null) return [];
      if (typeof value === "string") return [fieldMessage(value)];
      if (Array.isArray(value)) return value.flatMap((v) => text(v, field));
      return Object.entries(value).map(([key, v]) => {
        // A list field's item is named by its index: say which value it was.
        const list = sent[field];
        const which = Array.isArray(list) && /^\d+$/.test(key) && list[Number(key)] !== undefined ? list[Number(key)] : key;
        return `${which}: ${text(v, field).join(" ")}`;
      });
    };
    return Object.fromEntries(Object.entries(errors).map(([field, value]) => [field, text(value, field).join("; ")]));
  }

  /** Show an API error in `form`: each field's message beside it, what names no field below.
   * `fallbackField`: where a 409 naming no field is said (a username taken, an address registered). */
  function showErrors(form, error, sent, fallbackField = null) {
    const byField = fieldErrors(error.body, sent);
    if (!Object.keys(byField).length && fallbackField && error.status === 409) byField[fallbackField] = fieldMessage(error.message);
    const left = [];
    for (const [field, message] of Object.entries(byField)) {
      const slot = form.querySelector(`.field-error[data-field="${CSS.escape(field)}"]`);
      if (slot && !slot.closest("[hidden]")) slot.textContent = message;
      else left.push(`${field}: ${message}`);
    }
    form.querySelector(".form-error").textContent = Object.keys(byField).length ? left.join(" ") : error.message;
  }

  return { fieldMessage, fieldErrors, showErrors };
}
