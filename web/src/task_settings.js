// The roster page's task deadlines card (工单时限): the community's hours to resolve a task and to
// first contact the resident, by urgency, and a request type's own where they differ
// (GET/PUT /api/v1/communities/{code}/task-settings). Leaders and admins read them; the
// community's admin changes them. Tasks opened from then on are given them.
import { ApiError, TASK_TEXT, api, deadlineSpan as span, escapeHtml } from "./common.js";
import { errorList, problem } from "./roster_settings.js";

const URGENCIES = ["danger", "utility", "general", "complex"];
const TYPES = ["consultation", "help", "complaint", "report", "suggestion"];
const TEXT = {
  zh: {
    title: "工单时限", edit: "修改", save: "保存", cancel: "取消",
    urgency: "紧急程度", resolve: "办结时限", contact: "首次联系时限",
    urgencies: TASK_TEXT.zh.urgencies, types: TASK_TEXT.zh.types, hours: TASK_TEXT.zh.hours, days: TASK_TEXT.zh.days,
    byType: "按诉求类型另定的办结时限（留空同上表）", noByType: "各类诉求同上表。",
    hoursHint: "单位：小时（0–2160）", readOnly: "只有社区管理员可以修改工单时限。",
    note: "修改后新登记的工单按新时限计算；已有工单的时限不变。",
    saved: "已保存。此后登记的工单按新时限计算，已有工单不变。",
    notSaved: "工单时限未保存：请按提示修改。", forbidden: "只有本社区的管理员可以修改。",
    offline: "网络未连接，请恢复连接后重试。", loadFailed: "无法读取工单时限：",
    contactLate: (u, c, d) => `${u}：首次联系（${c}小时）晚于办结时限（${d}小时）`,
  },
  en: {
    title: "Task deadlines", edit: "Change", save: "Save", cancel: "Cancel",
    urgency: "Urgency", resolve: "To resolve", contact: "To first contact",
    urgencies: TASK_TEXT.en.urgencies, types: TASK_TEXT.en.types, hours: TASK_TEXT.en.hours, days: TASK_TEXT.en.days,
    byType: "A request type's own time to resolve (blank: as above)", noByType: "Every request type as above.",
    hoursHint: "In hours (0–2160)", readOnly: "Only the community's admin changes the task deadlines.",
    note: "Tasks opened after a change are given the new deadlines; open tasks keep theirs.",
    saved: "Saved. Tasks opened from now on are given these deadlines; open tasks keep theirs.",
    notSaved: "The task deadlines were not saved: see the fields marked.",
    forbidden: "Only the community's admin may change these.", offline: "Offline: retry once connected.",
    loadFailed: "The task deadlines could not be read: ",
    contactLate: (u, c, d) => `${u}: first contact (${c} h) after the deadline (${d} h)`,
  },
};
const $ = (id) => document.getElementById(id);

/** The card in `section` for community `code`; `me` the signed-in user. Returns {load}. */
export function initTaskSettings({ lang, code, me, section }) {
  const t = TEXT[lang];
  const mayEdit = me.role === "community_admin" && me.community_code === code;
  let settings = null;
  const input = (name, value, label) => `<input name="${name}" type="number" min="0" max="2160" step="any"
    inputmode="decimal" value="${value ?? ""}" aria-label="${escapeHtml(label)}">`;
  const errorSlot = (field) => `<span class="field-error" data-field="${field}"></span>`;
  section.innerHTML = `<div class="card-head"><h2>${escapeHtml(t.title)}</h2>
      <button type="button" class="edit"${mayEdit ? "" : " hidden"}>${escapeHtml(t.edit)}</button></div>
    <p class="muted hint">${escapeHtml(mayEdit ? t.note : t.readOnly)}</p>
    <div class="view"></div>
    <p class="saved" role="status" hidden></p>
    <form class="settings-form" novalidate hidden></form>`;
  const view = section.querySelector(".view");
  const form = section.querySelector("form");
  const saved = section.querySelector(".saved");

  function show() {
    const s = settings;
    const rows = URGENCIES.map((u) => `<tr data-urgency="${u}"><th scope="row">${escapeHtml(t.urgencies[u])}</th>
      <td class="resolve">${escapeHtml(span(t, s.deadline_hours[u]))}</td>
      <td class="contact">${escapeHtml(span(t, s.first_contact_hours[u]))}</td></tr>`).join("");
    const own = TYPES.filter((type) => Object.keys(s.by_type?.[type]?.deadline_hours || {}).length);
    const byType = own.map((type) => {
      const hours = s.by_type[type].deadline_hours;
      const parts = URGENCIES.filter((u) => hours[u] !== undefined)
        .map((u) => `${t.urgencies[u]} ${span(t, hours[u])}`);
      return `<li data-type="${type}">${escapeHtml(t.types[type])}${lang === "zh" ? "：" : ": "}${escapeHtml(parts.join(lang === "zh" ? "，" : ", "))}</li>`;
    }).join("");
    view.innerHTML = `<table class="plain deadlines"><thead><tr><th>${escapeHtml(t.urgency)}</th>
      <th>${escapeHtml(t.resolve)}</th><th>${escapeHtml(t.contact)}</th></tr></thead><tbody>${rows}</tbody></table>
      ${own.length ? `<p>${escapeHtml(t.byType)}</p><ul class="by-type">${byType}</ul>` : `<p class="muted">${escapeHtml(t.noByType)}</p>`}`;
    section.dataset.loaded = "1";
  }

  function fill() {
    const s = settings;
    const rows = URGENCIES.map((u) => `<tr><th scope="row">${escapeHtml(t.urgencies[u])}</th>
      <td>${input(`deadline_hours.${u}`, s.deadline_hours[u], `${t.urgencies[u]} ${t.resolve}`)}${errorSlot(`deadline_hours.${u}`)}</td>
      <td>${input(`first_contact_hours.${u}`, s.first_contact_hours[u], `${t.urgencies[u]} ${t.contact}`)}${errorSlot(`first_contact_hours.${u}`)}</td></tr>`).join("");
    const typeRows = TYPES.map((type) => `<tr><th scope="row">${escapeHtml(t.types[type])}</th>${URGENCIES.map((u) => `<td>${input(
      `by_type.${type}.deadline_hours.${u}`, s.by_type?.[type]?.deadline_hours?.[u], `${t.types[type]} ${t.urgencies[u]}`,
    )}</td>`).join("")}</tr>`).join("");
    form.innerHTML = `<p class="muted">${escapeHtml(t.hoursHint)}</p>
      <table class="plain deadlines-form"><thead><tr><th>${escapeHtml(t.urgency)}</th><th>${escapeHtml(t.resolve)}</th>
      <th>${escapeHtml(t.contact)}</th></tr></thead><tbody>${rows}</tbody></table>
      ${errorSlot("deadline_hours")}${errorSlot("first_contact_hours")}
      <fieldset><legend>${escapeHtml(t.byType)}</legend>
      <table class="plain by-type-form"><thead><tr><th></th>${URGENCIES.map((u) => `<th>${escapeHtml(t.urgencies[u])}</th>`).join("")}</tr></thead>
      <tbody>${typeRows}</tbody></table>${errorSlot("by_type")}</fieldset>
      <div class="form-error" role="alert" hidden></div>
      <div class="buttons"><button type="submit" class="primary">${escapeHtml(t.save)}</button>
      <button type="button" class="cancel">${escapeHtml(t.cancel)}</button></div>`;
    form.querySelector(".cancel").addEventListener("click", close);
  }

  /** The body the form asks for: every urgency's two times; each type's own, where given. */
  function body() {
    const number = (name) => {
      const raw = form.elements[name].value.trim();
      return raw === "" ? undefined : Number(raw);
    };
    const out = { deadline_hours: {}, first_contact_hours: {}, by_type: {} };
    for (const u of URGENCIES) {
      for (const key of ["deadline_hours", "first_contact_hours"]) {
        const value = number(`${key}.${u}`);
        if (value !== undefined) out[key][u] = value;
      }
    }
    for (const type of TYPES) {
      const own = {};
      for (const u of URGENCIES) {
        const value = number(`by_type.${type}.deadline_hours.${u}`);
        if (value !== undefined) own[u] = value;
      }
      // A type's own first contact times, which this form does not show, are kept as read.
      const contact = settings.by_type?.[type]?.first_contact_hours;
      if (Object.keys(own).length || contact) {
        out.by_type[type] = { ...(Object.keys(own).length ? { deadline_hours: own } : {}), ...(contact ? { first_contact_hours: contact } : {}) };
      }
    }
    return out;
  }

  function refuse(error) {
    const box = form.querySelector(".form-error");
    for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
    if (!(error instanceof ApiError)) return problem(box, t.offline, error.message || String(error));
    if (error.status === 403) return problem(box, t.forbidden, error.body?.detail || "");
    const left = [];
    for (const [path, text] of errorList(error.body)) {
      const slot = [path.join("."), path.slice(0, 2).join("."), path[0]]
        .map((f) => form.querySelector(`.field-error[data-field="${CSS.escape(f)}"]`)).find(Boolean);
      const late = /^(\w+): first contact in ([\d.]+) h comes after the deadline \(([\d.]+) h\)\.$/.exec(text);
      const said = late ? t.contactLate(t.urgencies[late[1]] || late[1], late[2], late[3]) : text;
      if (slot) slot.textContent = slot.textContent ? `${slot.textContent} ${said}` : said;
      else left.push(`${path.join(".")}: ${said}`);
    }
    problem(box, t.notSaved, error.body?.detail || error.message, left);
  }

  function open() {
    fill();
    saved.hidden = true;
    form.hidden = false;
    section.querySelector(".edit").hidden = true;
    form.querySelector("input")?.focus();
  }

  function close() {
    form.hidden = true;
    form.innerHTML = "";
    section.querySelector(".edit").hidden = !mayEdit;
  }

  let saving = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (saving) return; // a double click saves once
    saving = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      settings = await api(`/api/v1/communities/${encodeURIComponent(code)}/task-settings`, { method: "PUT", body: body() });
    } catch (error) {
      refuse(error);
      return;
    } finally {
      saving = false;
      button.disabled = false;
    }
    close();
    show();
    saved.textContent = t.saved;
    saved.hidden = false;
  });
  section.querySelector(".edit").addEventListener("click", open);

  return {
    async load() {
      section.hidden = false;
      try {
        settings = await api(`/api/v1/communities/${encodeURIComponent(code)}/task-settings`);
      } catch (error) {
        view.textContent = t.loadFailed + (error.body?.detail || error.message || "");
        return;
      }
      show();
    },
  };
}
