// The roster page's settings cards: the community's roster settings (GET/PUT
// /communities/{code}/roster-settings) and visit cadence (GET/PUT /communities/{code}/visit-cadence).
// Leaders and admins read them; the community's admin changes them (the API's
// require_roster_settings_admin / require_cadence_admin); a refusal's `errors` are said beside the
// fields they name, what names no field beneath the form with the server's `detail`.
import { ApiError, CARE_TAGS, api, escapeHtml } from "./common.js";

const TEXT = {
  zh: {
    settingsTitle: "排班设置", cadenceTitle: "走访频次（五必访）", edit: "修改", save: "保存", cancel: "取消",
    workingDays: "工作日", window: "窗口（A岗）每日人数", aMin: "窗口每日最少人数", aMax: "窗口每日最多人数",
    bDays: "每个网格每周入户天数（至少）", restMin: "每人每周休息天数（至少）",
    aHours: "窗口（A岗）时间", bHours: "入户（B岗）时间", holidays: "节假日（不上班）",
    aSlots: "窗口错峰时段", addSlot: "添加时段", removeSlot: "删除此时段",
    slotsHint: "大厅延时开放（如 8:00–20:00）时分时段排窗口：每个时段每个工作日都有人，早晚班轮流。不设时段则窗口全天按上面的时间。",
    extraDays: "调休上班日", restDays: "固定休息日", timeLimit: "排班计算时限（秒）",
    datesHint: "每行一个日期，如 2026-10-01", restHint: "勾选各网格员每周固定休息的日子。",
    people: (n) => `${n} 人`, days: (n) => `${n} 天`, seconds: (n) => `${n} 秒`, none: "无",
    weekdays: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"], list: "、",
    readOnly: "只有社区管理员可以修改排班设置和走访频次。",
    settingsNote: "修改后，已生成的排班不会自动改变：草稿需“重新生成”才按新设置排班，已发布的排班保持不变。",
    savedDraft: "已保存。本周草稿未改变：点击“重新生成”即按新设置排班。",
    savedPublished: "已保存。已发布的本周排班保持不变；之后生成的排班按新设置。",
    savedNone: "已保存。生成排班时将按新设置。",
    notSaved: "排班设置未保存：请按提示修改。", cadenceNotSaved: "走访频次未保存：请按提示修改。",
    forbidden: "只有本社区的管理员可以修改。", offline: "网络未连接，请恢复连接后重试。",
    loadFailed: "无法读取：", worker: "网格员",
    cadenceDefault: "每户每周走访次数", cadenceTags: "以下人群每周走访次数（取最高；留空同一般住户）",
    perWeek: (n) => `每周 ${n} 次`, everyHousehold: "一般住户", asEveryone: "同一般住户",
    cadenceNote: "修改自本周（ISO 周，北京时间）起生效：本周的必访统计按新频次重新计算，之前各周保持原频次。",
    cadenceSaved: "已保存，自本周起生效；本周必访统计已按新频次重新计算。",
  },
  en: {
    settingsTitle: "Roster settings", cadenceTitle: "Visit cadence (must-visit groups)", edit: "Change", save: "Save",
    cancel: "Cancel", workingDays: "Working days", window: "At the window (A-post) each day", aMin: "At the window each day, at least",
    aMax: "At the window each day, at most", bDays: "Door-to-door days per grid a week, at least",
    restMin: "Rest days per worker a week, at least", aHours: "Window (A-post) hours", bHours: "Door-to-door (B-post) hours",
    aSlots: "Staggered window slots", addSlot: "Add a slot", removeSlot: "Remove this slot",
    slotsHint: "A hall open long hours (say 8:00–20:00) rosters its window in slots: each staffed every working day, early and late taken in turn. No slots: the whole window keeps the hours above.",
    holidays: "Holidays (not worked)", extraDays: "Extra working days (调休)", restDays: "Fixed rest days",
    timeLimit: "Solver time limit (seconds)", datesHint: "One date a line, e.g. 2026-10-01",
    restHint: "Tick the weekdays each worker always rests.",
    people: (n) => `${n} ${n === 1 ? "person" : "people"}`, days: (n) => `${n} ${n === 1 ? "day" : "days"}`,
    seconds: (n) => `${n} s`, none: "none", weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], list: ", ",
    readOnly: "Only the community's admin changes the roster settings and the visit cadence.",
    settingsNote: "A change does not rewrite rosters already made: a draft follows it once regenerated; a published week stays as it is.",
    savedDraft: "Saved. This week's draft is unchanged: regenerate it to roster by the new settings.",
    savedPublished: "Saved. This week's published roster stays as it is; rosters generated from now on follow the new settings.",
    savedNone: "Saved. The week is rostered by the new settings when generated.",
    notSaved: "The roster settings were not saved: see the fields marked.",
    cadenceNotSaved: "The visit cadence was not saved: see the fields marked.",
    forbidden: "Only the community's admin may change these.", offline: "Offline: retry once connected.",
    loadFailed: "Could not read: ", worker: "Worker",
    cadenceDefault: "Visits per household a week", cadenceTags: "Visits a week for these groups (the highest applies; empty: as every household)",
    perWeek: (n) => `${n} a week`, everyHousehold: "Every household", asEveryone: "as every household",
    cadenceNote: "A change applies from this ISO week (Beijing time), the whole of it: this week's must-visit figures are recounted; earlier weeks keep theirs.",
    cadenceSaved: "Saved: in force from this week, whose must-visit figures were recounted.",
  },
};

// The API's refusals (marshmallow's and api/services/rosters.py's, ledger.py's) on the Chinese page.
const MESSAGES_ZH = [
  [/^a_min \((\d+)\) exceeds a_max \((\d+)\)\.$/, (a, b) => `最少人数（${a}）大于最多人数（${b}）。`],
  [/^A weekday is listed twice\.$/, () => "有重复的工作日。"],
  [/^(\d+) B-post days exceed the (\d+) working days\.$/, (a, b) => `入户天数（${a}）超过了工作日数（${b}）。`],
  [/^start must be before end\.$/, () => "开始时间须早于结束时间。"],
  [/^(\S+)–(\S+): start must be before end\.$/, (a, b) => `${a}–${b}：开始时间须早于结束时间。`],
  [/^(\S+)–(\S+) is listed twice\.$/, (a, b) => `${a}–${b} 重复了。`],
  [/^(\d+) slots need a_min \((\d+)\) of at least \d+: every slot is staffed each working day\.$/,
    (n, a) => `${n} 个时段每个工作日都要有人：窗口每日最少人数（${a}）须至少为 ${n}。`],
  [/^(.+) is not a worker of community (\d+)\.$/, (who) => `${who} 不是本社区的网格员。`],
  [/^(\S+) is also a holiday\.$/, (day) => `${day} 同时填在了节假日中。`],
  [/^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$/, (a, b) => `须在 ${a} 至 ${b} 之间。`],
  [/^Length must be between (\d+) and (\d+)\.$/, (a, b) => `须为 ${a} 至 ${b} 项。`],
  [/^Shorter than minimum length (\d+)\.$/, (a) => `至少 ${a} 项。`],
  [/^Longer than maximum length (\d+)\.$/, (a) => `最多 ${a} 项。`],
  [/^Not a valid date\.$/, () => "日期格式不正确（应为 YYYY-MM-DD）。"],
  [/^Not a valid integer\.$/, () => "须为整数。"],
  [/^Not a valid number\.$/, () => "须为数字。"],
  [/^HH:MM, 00:00-23:59\.$/, () => "时间格式应为 HH:MM。"],
  [/^Missing data for required field\.$/, () => "必填。"],
  [/^Field may not be null\.$/, () => "不能为空。"],
  [/^Must be a whole number of visits per week, 1 to (\d+)\.$/, (n) => `须为每周 1 至 ${n} 次的整数。`],
  [/^Must be a whole number 1 to (\d+)\.$/, (n) => `须为 1 至 ${n} 的整数。`],
  [/^Unknown care tag; one of .*$/, () => "未知的人群标签。"],
  [/^Must be one of: .*$/, () => "不是可选的值。"],
  [/^Unknown field\.$/, () => "未知字段。"],
];

const $ = (id) => document.getElementById(id);

/** Each refusal of a problem's `errors` as [path, message]: {json: {...}} or {...}, nested. */
export function errorList(body) {
  let errors = body?.errors;
  if (!errors || typeof errors !== "object") return [];
  if (errors.json && typeof errors.json === "object") errors = errors.json;
  const out = [];
  const walk = (value, path) => {
    if (value == null) return;
    if (typeof value === "string") out.push([path, value]);
    else if (Array.isArray(value)) for (const v of value) walk(v, path);
    else for (const [key, v] of Object.entries(value)) walk(v, [...path, ...key.split(".")]);
  };
  walk(errors, []);
  return out;
}

export function problem(box, why, detail = "", items = []) {
  const list = items.length ? `<ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join("")}</ul>` : "";
  box.innerHTML = why
    ? `<span class="why">${escapeHtml(why)}</span>${list}${detail ? `<span class="detail">${escapeHtml(detail)}</span>` : ""}`
    : "";
  box.hidden = !why;
}

/**
 * The settings and cadence cards. `page` gives what the roster page knows: `lang`, `code`, `me`,
 * `workerNames()` (id -> name of the community's shift holders), `weekStatus()` ("draft",
 * "published" or null) and `onSettings(settings)`, called with the settings as read and saved.
 */
export function initSettings(page) {
  const { lang, code, me } = page;
  const t = TEXT[lang];
  const mayEdit = me.role === "community_admin" && me.community_code === code;
  for (const el of document.querySelectorAll("#settings [data-t], #cadence [data-t]")) {
    const text = t[el.dataset.t];
    if (typeof text === "string") el.textContent = text;
  }
  const message = (text) => {
    if (lang !== "zh") return text;
    for (const [pattern, say] of MESSAGES_ZH) {
      const match = pattern.exec(text);
      if (match) return say(...match.slice(1));
    }
    return text;
  };
  const dayList = (days) => (days?.length ? days.map((d) => t.weekdays[d - 1]).join(t.list) : t.none);
  const dates = (list) => (list?.length ? list.join(t.list) : t.none);
  const parseDates = (text) => text.split(/[\s,，、;；]+/).filter(Boolean);
  const fact = (label, value) => `<dt>${escapeHtml(label)}</dt><dd>${escapeHtml(value)}</dd>`;

  /** Say a refusal in `form`: each message beside the field it names, the rest in `box`. */
  function refuse(form, box, why, error, sent, describe = () => "") {
    for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
    if (!(error instanceof ApiError)) return problem(box, t.offline, error.message || String(error));
    if (error.status === 403) return problem(box, t.forbidden, error.body?.detail || "");
    const left = [];
    for (const [path, text] of errorList(error.body)) {
      let slot = null;
      let at = path.length;
      for (; at > 0 && !slot; at--) {
        slot = form.querySelector(`.field-error[data-field="${CSS.escape(path.slice(0, at).join("."))}"]`);
      }
      const field = path.slice(0, at + 1).join(".");
      const rest = path.slice(at + 1).filter((p) => p !== "key" && p !== "value");
      const which = describe(field, rest, sent);
      const said = (which ? `${which}: ` : "") + message(text);
      if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${said}` : said;
      else left.push(`${path.join(".")}: ${said}`);
    }
    problem(box, why, error.body?.detail || error.message, left);
  }

  // --- roster settings ------------------------------------------------------------------------
  let settings = null;
  const form = $("settings-form");

  function showSettings() {
    const s = settings;
    const names = page.workerNames();
    const rest = Object.entries(s.rest_days || {})
      .map(([id, days]) => `${names.get(Number(id)) || `#${id}`}${lang === "zh" ? "：" : ": "}${dayList(days)}`);
    $("settings-view").innerHTML = [
      fact(t.workingDays, dayList(s.working_days)),
      fact(t.window, t.people(s.a_min === s.a_max ? s.a_min : `${s.a_min}–${s.a_max}`)),
      fact(t.bDays, t.days(s.min_b_days_per_grid)),
      fact(t.restMin, t.days(s.min_rest_days_per_week)),
      fact(t.aHours, `${s.a_hours.start}–${s.a_hours.end}`),
      fact(t.aSlots, s.a_slots?.length ? s.a_slots.map((x) => `${x.start}–${x.end}`).join(t.list) : t.none),
      fact(t.bHours, `${s.b_hours.start}–${s.b_hours.end}`),
      fact(t.holidays, dates(s.holidays)),
      fact(t.extraDays, dates(s.extra_working_days)),
      fact(t.restDays, rest.length ? rest.join(lang === "zh" ? "；" : "; ") : t.none),
      fact(t.timeLimit, t.seconds(s.time_limit_s)),
    ].join("");
  }

  function fillForm() {
    const s = settings;
    $("working-days").innerHTML = t.weekdays.map((name, i) => `<label class="check"><input type="checkbox" name="working_days" value="${i + 1}"${s.working_days.includes(i + 1) ? " checked" : ""}>${escapeHtml(name)}</label>`).join("");
    for (const key of ["a_min", "a_max", "min_b_days_per_grid", "min_rest_days_per_week", "time_limit_s"]) {
      form.elements[key].value = s[key];
    }
    for (const key of ["a_hours", "b_hours"]) {
      form.elements[`${key}.start`].value = s[key].start;
      form.elements[`${key}.end`].value = s[key].end;
    }
    $("a-slots").innerHTML = "";
    for (const slot of s.a_slots || []) addSlot(slot);
    form.elements.holidays.value = (s.holidays || []).join("\n");
    form.elements.extra_working_days.value = (s.extra_working_days || []).join("\n");
    // A row per shift holder, and per stored entry for someone no longer one (kept as read).
    const names = page.workerNames();
    const ids = [...new Set([...names.keys(), ...Object.keys(s.rest_days || {}).map(Number)])];
    const head = `<tr><th>${escapeHtml(t.worker)}</th>${t.weekdays.map((d) => `<th>${escapeHtml(d)}</th>`).join("")}</tr>`;
    const rows = ids.map((id) => {
      const resting = s.rest_days?.[String(id)] || [];
      return `<tr><th>${escapeHtml(names.get(id) || `#${id}`)}</th>${t.weekdays.map((d, i) => `<td><input type="checkbox" data-worker="${id}" value="${i + 1}" aria-label="${escapeHtml(`${names.get(id) || id} ${d}`)}"${resting.includes(i + 1) ? " checked" : ""}></td>`).join("")}</tr>`;
    });
    $("rest-table").innerHTML = `<thead>${head}</thead><tbody>${rows.join("")}</tbody>`;
  }

  /** One row of the window's slots in the form: start – end, and a button that removes it. */
  function addSlot(slot = { start: "", end: "" }) {
    const row = document.createElement("span");
    row.className = "slot";
    row.innerHTML = `<input type="time" data-slot="start" value="${escapeHtml(slot.start)}"> – <input type="time" data-slot="end" value="${escapeHtml(slot.end)}"> <button type="button" class="slot-remove" aria-label="${escapeHtml(t.removeSlot)}" title="${escapeHtml(t.removeSlot)}">×</button>`;
    row.querySelector(".slot-remove").addEventListener("click", () => row.remove());
    $("a-slots").append(row);
    return row;
  }

  /** The form as the PUT's body: every field, as typed (the API judges it). */
  function formBody() {
    const number = (name) => {
      const value = form.elements[name].value.trim();
      return value === "" ? null : Number(value);
    };
    const rest = {};
    for (const box of $("rest-table").querySelectorAll("input[data-worker]")) {
      const id = box.dataset.worker;
      rest[id] ||= [];
      if (box.checked) rest[id].push(Number(box.value));
    }
    return {
      working_days: [...form.querySelectorAll("input[name=working_days]:checked")].map((b) => Number(b.value)),
      a_min: number("a_min"),
      a_max: number("a_max"),
      min_b_days_per_grid: number("min_b_days_per_grid"),
      min_rest_days_per_week: number("min_rest_days_per_week"),
      rest_days: Object.fromEntries(Object.entries(rest).filter(([, days]) => days.length)),
      a_hours: { start: form.elements["a_hours.start"].value, end: form.elements["a_hours.end"].value },
      // A row left empty is no slot; one half filled is sent, and the API says what is wrong.
      a_slots: [...$("a-slots").querySelectorAll(".slot")]
        .map((row) => ({ start: row.querySelector("[data-slot=start]").value, end: row.querySelector("[data-slot=end]").value }))
        .filter((slot) => slot.start || slot.end),
      b_hours: { start: form.elements["b_hours.start"].value, end: form.elements["b_hours.end"].value },
      holidays: parseDates(form.elements.holidays.value),
      extra_working_days: parseDates(form.elements.extra_working_days.value),
      time_limit_s: number("time_limit_s"),
    };
  }

  const describeSettings = (field, rest, sent) => {
    const list = sent[field];
    if (field === "a_slots" && /^\d+$/.test(rest[0] || "")) {
      const slot = list?.[Number(rest[0])];
      return slot ? `${slot.start || "?"}–${slot.end || "?"}` : "";
    }
    if (Array.isArray(list) && /^\d+$/.test(rest[0] || "")) return String(list[Number(rest[0])] ?? "");
    if (field === "rest_days" && rest[0]) return page.workerNames().get(Number(rest[0])) || rest[0];
    return "";
  };

  function openSettings() {
    fillForm();
    for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
    problem($("settings-error"), "");
    $("settings-saved").hidden = true;
    $("settings-view").hidden = true;
    form.hidden = false;
    $("settings-edit").hidden = true;
    form.scrollIntoView({ block: "nearest" });
  }

  function closeSettings() {
    form.hidden = true;
    $("settings-view").hidden = false;
    $("settings-edit").hidden = !mayEdit;
  }

  async function saveSettings(event) {
    event.preventDefault();
    const body = formBody();
    const button = $("settings-save");
    button.disabled = true;
    try {
      settings = await api(`/api/v1/communities/${code}/roster-settings`, { method: "PUT", body });
      closeSettings();
      showSettings();
      page.onSettings(settings);
      const status = page.weekStatus();
      const saved = $("settings-saved");
      saved.textContent = status === "draft" ? t.savedDraft : status === "published" ? t.savedPublished : t.savedNone;
      saved.hidden = false;
    } catch (error) {
      refuse(form, $("settings-error"), t.notSaved, error, body, describeSettings);
    } finally {
      button.disabled = false;
    }
  }

  // --- visit cadence --------------------------------------------------------------------------
  let cadence = null;
  const cform = $("cadence-form");
  const tagName = (tag) => (CARE_TAGS[tag] ? CARE_TAGS[tag][lang === "zh" ? 0 : 1] : tag);

  function showCadence() {
    const tags = Object.entries(cadence.tags || {});
    $("cadence-view").innerHTML = [
      fact(t.everyHousehold, t.perWeek(cadence.default)),
      ...tags.map(([tag, n]) => fact(tagName(tag), t.perWeek(n))),
    ].join("");
  }

  function fillCadence() {
    cform.elements.default.value = cadence.default;
    $("cadence-tags").innerHTML = Object.keys(CARE_TAGS).map((tag) => `<label><span>${escapeHtml(tagName(tag))}</span><input name="tags.${tag}" type="number" min="1" max="7" step="1" placeholder="${escapeHtml(t.asEveryone)}" value="${cadence.tags?.[tag] ?? ""}"><span class="field-error" data-field="tags.${tag}"></span></label>`).join("");
  }

  function cadenceBody() {
    const number = (value) => (value.trim() === "" ? null : Number(value));
    const tags = {};
    for (const tag of Object.keys(CARE_TAGS)) {
      const value = cform.elements[`tags.${tag}`].value;
      if (value.trim() !== "") tags[tag] = number(value);
    }
    return { default: number(cform.elements.default.value), tags };
  }

  function openCadence() {
    fillCadence();
    for (const slot of cform.querySelectorAll(".field-error")) slot.textContent = "";
    problem($("cadence-error"), "");
    $("cadence-saved").hidden = true;
    $("cadence-view").hidden = true;
    cform.hidden = false;
    $("cadence-edit").hidden = true;
  }

  function closeCadence() {
    cform.hidden = true;
    $("cadence-view").hidden = false;
    $("cadence-edit").hidden = !mayEdit;
  }

  async function saveCadence(event) {
    event.preventDefault();
    const body = cadenceBody();
    const button = $("cadence-save");
    button.disabled = true;
    try {
      cadence = await api(`/api/v1/communities/${code}/visit-cadence`, { method: "PUT", body });
      closeCadence();
      showCadence();
      $("cadence-saved").textContent = t.cadenceSaved;
      $("cadence-saved").hidden = false;
    } catch (error) {
      refuse(cform, $("cadence-error"), t.cadenceNotSaved, error, body);
    } finally {
      button.disabled = false;
    }
  }

  // --- wiring ----------------------------------------------------------------------------------
  $("settings-who").textContent = mayEdit ? t.settingsNote : t.readOnly;
  $("cadence-who").textContent = t.cadenceNote;
  $("settings-edit").addEventListener("click", openSettings);
  $("settings-cancel").addEventListener("click", closeSettings);
  $("a-slot-add").addEventListener("click", () => addSlot().querySelector("input").focus());
  form.addEventListener("submit", saveSettings);
  $("cadence-edit").addEventListener("click", openCadence);
  $("cadence-cancel").addEventListener("click", closeCadence);
  cform.addEventListener("submit", saveCadence);

  return {
    /** Show the settings as read (null: unreadable, the error said). */
    async load(loaded) {
      settings = loaded;
      if (settings) showSettings();
      else $("settings-view").innerHTML = fact(t.loadFailed, "");
      $("settings").hidden = false;
      $("settings-edit").hidden = !mayEdit || !settings;
      try {
        cadence = await api(`/api/v1/communities/${code}/visit-cadence`);
        showCadence();
      } catch (error) {
        $("cadence-view").innerHTML = fact(t.loadFailed, error.body?.detail || error.message || "");
      }
      $("cadence").hidden = false;
      $("cadence-edit").hidden = !mayEdit || !cadence;
    },
    /** The names changed (the week read): say the rest days with them. */
    refresh() {
      if (settings && form.hidden) showSettings();
    },
  };
}
