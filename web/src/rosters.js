// The roster page (/rosters): a grid leader or the community's admin generates a week's AB-post
// roster, reads it as days by posts (the window, each grid's door-to-door round), publishes it
// (a short-staffed week once its gaps are confirmed) and hands a shift to another worker.
import {
  ApiError, api, apiOnce, apiPages, beijingTime, escapeHtml, isoWeek, otherLangHref, pickLang, shiftWeek,
  todayLocal, translate,
} from "./common.js";
import { bootPage, signOutAndReload } from "./password.js";
import { initSettings } from "./roster_settings.js";
import { initTaskSettings } from "./task_settings.js";
import { keepFresh } from "./session.js";

const TEXT = {
  zh: {
    title: "排班", username: "用户名", password: "密码", signIn: "登录", signOut: "退出", other: "English",
    toApp: "网格员应用", toAccounts: "账号管理", toRegister: "住户登记册", badLogin: "用户名或密码错误", signinFailed: "登录失败：",
    prevWeek: "‹ 上一周", nextWeek: "下一周 ›", publish: "发布", generate: "生成排班", regenerate: "重新生成",
    none: "尚未排班", draft: "草稿", published: "已发布", publishedAt: (at) => `已发布 · ${at}`,
    windowPost: "窗口（A岗）", gridPost: "入户（B岗）", relief: "（顶岗）",
    weekdays: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
    shortHeading: "人手不足：以下要求未能满足", ruleLabel: "规则：",
    shortWindow: (s, day) => `${day}窗口需${s.required}人，只排了${s.rostered}人，缺${s.short}人`,
    shortSlot: (day, hours) => `${day}窗口 ${hours} 时段无人值守`,
    shortGrid: (s, grid) => `网格 ${grid}：本周入户走访需${s.required}天，只排了${s.rostered}天，缺${s.short}天`,
    shortUncovered: (s, day, post, why) => `${day}${post}：${s.worker_name}${why}，无人顶岗`,
    reasons: { on_leave: "请假", deactivated: "账号已停用", not_a_worker: "已不是本社区网格员" },
    confirmTitle: "本周排班人手不足，仍要发布吗？",
    confirmText: "发布后，以下缺口会随排班一并告知；也可以先调整班次或修改排班设置后重新生成。",
    confirmOk: "仍然发布", cancel: "取消", save: "保存",
    regenTitle: "重新生成本周草稿？",
    regenText: "将按当前排班设置重新排出本周，草稿中已做的改派会被替换。",
    regenOk: "重新生成",
    editHint: "点击姓名可将该班次改派给本社区的其他网格员。",
    handTo: "改派给", current: "当前", busyThatDay: "（当天已有岗位）", slotLabel: "窗口时段",
    notAllowed: "只有网格长和社区管理员可以排班。您可以在网格员应用中查看自己的班次。",
    loadFailed: "无法读取排班：", working: "正在处理…",
    genPublished: "本周排班已发布，不能重新生成；请逐个改派班次。",
    genOver: "这一周已经过去，不能再排班。",
    genBusy: "本周排班正在生成，请稍后重试。",
    genNoWorkers: "本社区没有可排班的网格员，无法生成排班。",
    genTimeout: "排班计算超时，请稍后重试。",
    genFailed: "排班未能生成：",
    pubAlready: "该排班已经发布。",
    pubUnstaffed: "排班中有人员无法到岗（请假、账号停用等），请先改派以下班次或重新生成，再发布：",
    pubFailed: "排班未能发布：",
    forbidden: "您没有权限修改本社区的排班。",
    editConflict: "未能调整：与排班规则冲突（当天已有岗位、请假、每周休息不足或日期已过）。",
    editInvalid: "未能调整：所选人员或网格不符合要求。",
    editGone: "未能调整：该班次已不存在（排班可能已重新生成），请刷新页面。",
    editFailed: "未能调整：",
    offline: "网络未连接，请恢复连接后重试。",
    roles: { worker: "网格员", grid_leader: "网格长", community_admin: "社区管理员", district_viewer: "区级查看" },
    changesTitle: (n) => `变更记录（${n}）`, changesNone: "发布后没有变更。", changesFailed: "无法读取变更记录：",
    kinds: { handed: "改派", moved: "调整", swap: "换班", leave: "请假改派" },
    onLeave: (name) => `（${name}当天请假）`, changedBy: (name, at) => `${name} · ${at}`, nobody: "（已删除的账号）",
  },
  en: {
    title: "Rosters", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out", other: "中文",
    toApp: "Workers' app", toAccounts: "Accounts", toRegister: "Resident register", badLogin: "Wrong username or password", signinFailed: "Sign-in failed: ",
    prevWeek: "‹ Previous week", nextWeek: "Next week ›", publish: "Publish", generate: "Generate roster",
    regenerate: "Regenerate", none: "Not rostered yet", draft: "Draft", published: "Published",
    publishedAt: (at) => `Published · ${at}`,
    windowPost: "Window (A-post)", gridPost: "Door to door (B-post)", relief: " (relief)",
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    shortHeading: "Short-staffed: these requirements are not met", ruleLabel: "Rule: ",
    shortWindow: (s, day) => `${day}: ${s.required} needed at the window, ${s.rostered} rostered, ${s.short} short`,
    shortSlot: (day, hours) => `${day}: nobody at the window ${hours}`,
    shortGrid: (s, grid) => `Grid ${grid}: ${s.required} door-to-door days needed, ${s.rostered} rostered, ${s.short} short`,
    shortUncovered: (s, day, post, why) => `${day} ${post}: ${s.worker_name} ${why}, nobody in their place`,
    reasons: { on_leave: "is on leave", deactivated: "is switched off", not_a_worker: "is no longer a worker here" },
    confirmTitle: "This week is short-staffed. Publish it all the same?",
    confirmText: "Once published, these gaps are said with the roster; or hand shifts on, or change the settings and regenerate.",
    confirmOk: "Publish anyway", cancel: "Cancel", save: "Save",
    regenTitle: "Regenerate this week's draft?",
    regenText: "The week is rostered anew by the current settings: the shifts handed on in the draft are replaced.",
    regenOk: "Regenerate",
    editHint: "Click a name to hand that shift to another worker of the community.",
    handTo: "Hand to", current: "now", busyThatDay: " (holds a post that day)", slotLabel: "Window slot",
    notAllowed: "Only grid leaders and the community's admins roster. Your own shifts are in the workers' app.",
    loadFailed: "Could not read the roster: ", working: "Working…",
    genPublished: "This week is published: it is not regenerated; hand its shifts on one by one.",
    genOver: "This week is over: it is not rostered again.",
    genBusy: "The week is being generated: retry shortly.",
    genNoWorkers: "The community has no workers to roster.",
    genTimeout: "The solver ran out of time: retry shortly.",
    genFailed: "The roster was not generated: ",
    pubAlready: "The roster is published already.",
    pubUnstaffed: "The roster names workers who will not come (leave, switched off): hand these shifts on or regenerate, then publish:",
    pubFailed: "The roster was not published: ",
    forbidden: "You may not change this community's rosters.",
    editConflict: "Not changed: it breaks a roster rule (a post that day, leave, rest days, or a past day).",
    editInvalid: "Not changed: the worker or grid chosen does not fit.",
    editGone: "Not changed: the shift is gone (the week was regenerated?): reload the page.",
    editFailed: "Not changed: ",
    offline: "Offline: retry once connected.",
    roles: { worker: "worker", grid_leader: "grid leader", community_admin: "community admin", district_viewer: "district viewer" },
    changesTitle: (n) => `Change log (${n})`, changesNone: "No change since publishing.", changesFailed: "Could not read the change log: ",
    kinds: { handed: "handed on", moved: "changed", swap: "swap", leave: "handed on: leave" },
    onLeave: (name) => ` (${name} on leave that day)`, changedBy: (name, at) => `by ${name} · ${at}`, nobody: "(a removed account)",
  },
};
const lang = pickLang();
const t = TEXT[lang];
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
document.title = `${t.title} · gridwork`;
translate(document, t);

const $ = (id) => document.getElementById(id);
const EDITORS = ["grid_leader", "community_admin"];
const WEEK_RE = /^[0-9]{4}-W[0-9]{2}$/;

let me = null;
let code = null;
let week = null;
let view = null; // the week as GET /communities/{code}/rosters/{week} answers; null: none yet
let settings = null;
let gridNames = new Map(); // code -> name
let workers = []; // the community's active workers and leaders: who may hold a shift
let editing = null; // the shift being handed on
let cards = null; // the settings and cadence cards (roster_settings.js)
let busy = false;
let loads = 0; // weeks asked for so far: only the last one asked is drawn

const dayName = (iso) => t.weekdays[(new Date(`${iso}T00:00:00Z`).getUTCDay() + 6) % 7];
const dayLabel = (iso) => (lang === "zh" ? `${dayName(iso)}（${iso.slice(5)}）` : `${dayName(iso)} ${iso.slice(5)}`);
const gridLabel = (gridCode) => {
  const name = gridNames.get(gridCode);
  return name ? (lang === "zh" ? `${name}（${gridCode}）` : `${name} (${gridCode})`) : gridCode || "";
};
const postLabel = (post, gridCode) => (post === "A" ? t.windowPost : `${t.gridPost} ${gridLabel(gridCode)}`);
/** An A-post's own time slot (staggered window hours), "08:00–16:30"; "" without one. */
const slotText = (slot) => (slot ? `${slot.start}–${slot.end}` : "");
const beijing = (when) => beijingTime(when, lang, "short");

function weekDays(w) {
  const [year, number] = w.split("-W").map(Number);
  const jan4 = Date.UTC(year, 0, 4);
  const monday = jan4 - ((new Date(jan4).getUTCDay() || 7) - 1) * 86400000 + (number - 1) * 7 * 86400000;
  return Array.from({ length: 7 }, (_, i) => new Date(monday + i * 86400000).toISOString().slice(0, 10));
}

/** The days shown: those the community works (its settings), and any day holding a shift. */
function shownDays() {
  const days = weekDays(week);
  const held = new Set((view?.days || []).filter((d) => d.A.length || d.B.length).map((d) => d.date));
  const holidays = new Set(settings?.holidays || []);
  const extra = new Set(settings?.extra_working_days || []);
  const working = new Set(settings?.working_days || [1, 2, 3, 4, 5]);
  return days.filter((d, i) => held.has(d) || extra.has(d) || (working.has(i + 1) && !holidays.has(d)));
}

// --- what the server said, in the office's words -------------------------------------------------
function problem(box, why, detail = "", items = []) {
  const list = items.length ? `<ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join("")}</ul>` : "";
  box.innerHTML = why
    ? `<span class="why">${escapeHtml(why)}</span>${list}${detail ? `<span class="detail">${escapeHtml(detail)}</span>` : ""}`
    : "";
  box.hidden = !why;
}
const detailOf = (error) => error.body?.detail || error.body?.title || error.message || String(error);

function shortfallText(s) {
  if (s.rule === "window" && s.slot) return t.shortSlot(dayLabel(s.date), slotText(s.slot));
  if (s.rule === "window") return t.shortWindow(s, dayLabel(s.date));
  if (s.rule === "grid") return t.shortGrid(s, gridLabel(s.grid_code));
  const why = t.reasons[s.reason] || s.reason || "";
  return t.shortUncovered(s, s.date ? dayLabel(s.date) : "", postLabel(s.post, s.grid_code), why);
}

function shortfallItems(list) {
  return list.map((s) => `<li>${escapeHtml(shortfallText(s))}<span class="why-en">${escapeHtml(s.why || "")}</span></li>`).join("");
}

// --- the week ---------------------------------------------------------------------------------------
function render() {
  parkEditor(); // the rows are drawn anew: the editor is not lost with its row
  const days = weekDays(week);
  $("week-label").textContent = lang === "zh" ? `${week}（${days[0]} – ${days[6]}）` : `${week} (${days[0]} – ${days[6]})`;
  const status = $("roster-status");
  status.className = `status ${view ? view.status : "none"}`;
  status.textContent = !view ? t.none : view.status === "published"
    ? t.publishedAt(view.published_at ? beijing(view.published_at) : "") : t.draft;
  const editor = EDITORS.includes(me.role);
  const gen = $("generate");
  gen.hidden = !editor || view?.status === "published";
  gen.textContent = view ? t.regenerate : t.generate;
  $("publish").hidden = !editor || view?.status !== "draft";
  $("edit-hint").hidden = !editor || !view;
  $("confirm-publish").hidden = true;
  $("confirm-regenerate").hidden = true;

  const box = $("shortfalls");
  const short = view?.shortfalls || [];
  box.hidden = !short.length;
  box.querySelector(".rule").textContent = view?.shortfall_rule ? t.ruleLabel + view.shortfall_rule : "";
  box.querySelector("ul").innerHTML = shortfallItems(short);

  const thead = $("grid-table").tHead;
  const tbody = $("grid-table").tBodies[0];
  if (!view) {
    thead.innerHTML = "";
    tbody.innerHTML = "";
    return;
  }
  const shown = shownDays();
  const today = todayLocal();
  const byDay = new Map(view.days.map((d) => [d.date, d]));
  const col = (d) => (d === today ? " today-col" : "");
  thead.innerHTML = `<tr><th class="post"></th>${shown.map((d) => `<th data-date="${d}" class="${col(d).trim()}">${escapeHtml(dayName(d))}<br><small>${d.slice(5)}</small></th>`).join("")}</tr>`;
  const grids = new Set([...gridNames.keys()]);
  for (const d of view.days) for (const s of d.B) if (s.grid_code) grids.add(s.grid_code);
  for (const s of short) if (s.grid_code) grids.add(s.grid_code);
  const who = (s) => {
    const hours = slotText(s.slot);
    const text = escapeHtml(s.worker_name) + (s.relief_for_id ? escapeHtml(t.relief) : "")
      + (hours ? `<small class="hours">${escapeHtml(hours)}</small>` : "");
    const cls = `who${s.relief_for_id ? " relief" : ""}${editing?.id === s.id ? " chosen" : ""}`;
    return editor && s.date >= today
      ? `<button type="button" class="${cls}" data-shift="${s.id}">${text}</button>`
      : `<span class="${cls}" data-shift="${s.id}">${text}</span>`;
  };
  // An empty window is a gap; a grid not visited that day is the plan (its week's minimum).
  const cell = (d, list, gap = false) => `<td class="cell${col(d)}${gap && !list.length ? " empty" : ""}" data-date="${d}">${list.map(who).join("")}</td>`;
  const rows = [`<tr class="post-A"><th class="post post-A-head">${escapeHtml(t.windowPost)}</th>${shown.map((d) => cell(d, byDay.get(d)?.A || [], true)).join("")}</tr>`];
  for (const g of [...grids].sort()) {
    const name = gridNames.get(g);
    rows.push(`<tr class="post-B" data-grid="${escapeHtml(g)}"><th class="post">${escapeHtml(t.gridPost)}<small>${escapeHtml(name || "")} ${escapeHtml(g)}</small></th>${shown.map((d) => cell(d, (byDay.get(d)?.B || []).filter((s) => s.grid_code === g))).join("")}</tr>`);
  }
  tbody.innerHTML = rows.join("");
  if (editing && !placeEditor(editing)) closeEditor();
}

async function load() {
  problem($("action-error"), "");
  closeEditor();
  // Weeks turned again before the answer: a week answered late is not drawn under another's label.
  const asked = ++loads;
  try {
    const read = await api(`/api/v1/communities/${code}/rosters/${week}`);
    if (asked !== loads) return;
    view = read;
  } catch (error) {
    if (asked !== loads) return;
    if (!(error instanceof ApiError) || error.status !== 404) {
      view = null;
      render();
      problem($("action-error"), t.loadFailed, detailOf(error));
      await loadChanges(); // none: the week left's log is not shown as this one's
      return;
    }
    view = null;
  }
  render();
  cards?.refresh();
  await loadChanges();
}

/** Names of the community's shift holders: the accounts read, and those rostered this week. */
function workerNames() {
  const names = new Map(workers.map((w) => [w.id, w.display_name || w.username]));
  for (const group of view?.pairs || []) for (const p of group) if (!names.has(p.id)) names.set(p.id, p.name);
  return names;
}

function goTo(w) {
  week = w;
  $("settings-saved").hidden = true; // it spoke of the week left
  const url = new URL(location.href);
  url.searchParams.set("week", w);
  history.replaceState(null, "", url);
  load();
}

// --- the change log of a published week ------------------------------------------------------------
/** One change in words: the shift before, what it became, and why (a swap, leave). */
function changeText(c) {
  const b = c.before || {};
  const a = c.after || {};
  const name = (side) => side.worker_name || `#${side.worker_id}`;
  const after = [];
  if (a.date !== b.date) after.push(dayLabel(a.date));
  if (a.post !== b.post || a.grid_code !== b.grid_code) after.push(postLabel(a.post, a.grid_code));
  if (a.slot && slotText(a.slot) !== slotText(b.slot)) after.push(slotText(a.slot));
  if (a.worker_id !== b.worker_id || !after.length) after.push(name(a));
  const what = `${dayLabel(b.date)} ${postLabel(b.post, b.grid_code)}${b.slot ? ` ${slotText(b.slot)}` : ""}${lang === "zh" ? "：" : ": "}${name(b)} → ${after.join(" ")}`;
  return c.for_leave_id ? what + t.onLeave(name(b)) : what;
}

function changeKind(c) {
  if (c.action === "swap") return "swap";
  if (c.for_leave_id) return "leave";
  return c.before?.worker_id !== c.after?.worker_id ? "handed" : "moved";
}

async function loadChanges() {
  const box = $("changes");
  if (view?.status !== "published") {
    box.hidden = true;
    return;
  }
  const rosterId = view.id;
  // Another week's log is not shown as this one's while it is read, nor after it failed.
  if (box.dataset.roster !== String(rosterId)) box.hidden = true;
  let changes;
  try {
    changes = await api(`/api/v1/rosters/${rosterId}/changes`);
  } catch (error) {
    if (view?.id !== rosterId) return;
    box.querySelector("summary").textContent = t.changesTitle("?");
    problem($("changes-error"), t.changesFailed, detailOf(error));
    $("changes-empty").hidden = true;
    $("changes-list").innerHTML = "";
    delete box.dataset.roster;
    box.hidden = false;
    return;
  }
  if (view?.id !== rosterId) return; // another week was opened meanwhile
  problem($("changes-error"), "");
  box.querySelector("summary").textContent = t.changesTitle(changes.length);
  $("changes-empty").hidden = changes.length > 0;
  $("changes-list").innerHTML = changes.map((c) => {
    const kind = changeKind(c);
    const by = t.changedBy(c.changed_by_name || t.nobody, beijing(c.changed_at));
    return `<li data-change="${c.id}"><span class="kind ${kind}">${escapeHtml(t.kinds[kind])}</span>${escapeHtml(changeText(c))} <span class="by">${escapeHtml(by)}</span></li>`;
  }).join("");
  box.dataset.roster = String(rosterId);
  box.hidden = false;
}

// --- generate, publish ------------------------------------------------------------------------------
async function act(button, work) {
  if (busy) return;
  busy = true;
  const was = button.textContent;
  button.disabled = true;
  button.textContent = t.working;
  try {
    await work();
  } finally {
    busy = false;
    button.disabled = false;
    if (button.textContent === t.working) button.textContent = was;
  }
}

async function generate() {
  problem($("action-error"), "");
  const asked = week;
  await act($("generate"), async () => {
    try {
      // Pressed again after a lost answer: the draft first made, not the week solved again.
      const generated = await apiOnce(`/api/v1/communities/${code}/rosters`, { method: "POST", body: { week: asked } });
      // Another week opened while the solver ran: the draft is that week's, stored; shown there.
      if (week !== asked) return;
      view = generated;
      closeEditor();
      render();
    } catch (error) {
      if (week !== asked) return; // said of a week no longer shown
      if (!(error instanceof ApiError)) return problem($("action-error"), t.offline, detailOf(error));
      const b = error.body || {};
      const why = error.status === 409 ? (b.roster_id ? t.genPublished : b.week ? t.genOver : t.genBusy)
        : error.status === 422 ? t.genNoWorkers : error.status === 503 ? t.genTimeout
          : error.status === 403 ? t.forbidden : t.genFailed;
      problem($("action-error"), why, detailOf(error));
      if (error.status === 409 && b.roster_id) await load().then(() => problem($("action-error"), why, detailOf(error)));
    }
  });
}

/** A draft is regenerated once confirmed: it replaces the shifts handed on in it. */
function onGenerate() {
  if (view?.status !== "draft") return generate();
  $("confirm-publish").hidden = true;
  const box = $("confirm-regenerate");
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
  $("regenerate-ok").focus({ preventScroll: true });
}

function askToPublish(shortfalls) {
  $("confirm-regenerate").hidden = true;
  const box = $("confirm-publish");
  box.querySelector("ul").innerHTML = shortfallItems(shortfalls);
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

async function publish(acceptShortfalls) {
  problem($("action-error"), "");
  $("confirm-publish").hidden = true;
  const asked = week;
  await act($("publish"), async () => {
    try {
      // Pressed again after a lost answer: published, not a 409 "already published".
      await apiOnce(`/api/v1/rosters/${view.id}/publish`, {
        method: "POST", body: acceptShortfalls ? { accept_shortfalls: true } : {},
      });
      if (week === asked) await load();
    } catch (error) {
      if (week !== asked) return; // said of a week no longer shown
      if (!(error instanceof ApiError)) return problem($("action-error"), t.offline, detailOf(error));
      const b = error.body || {};
      if (error.status === 409 && b.shortfalls?.length) return askToPublish(b.shortfalls);
      if (error.status === 409 && b.shifts?.length) {
        const items = b.shifts.map((s) => `${dayLabel(s.date)}${postLabel(s.post, s.grid_code)}：${s.worker_name}（${t.reasons[s.reason] || s.reason}）`);
        return problem($("action-error"), t.pubUnstaffed, detailOf(error), items);
      }
      const why = error.status === 409 ? t.pubAlready : error.status === 403 ? t.forbidden : t.pubFailed;
      if (error.status === 409) await load();
      problem($("action-error"), why, detailOf(error));
    }
  });
}

function onPublish() {
  if (!view) return;
  if (view.shortfalls?.length) askToPublish(view.shortfalls);
  else publish(false);
}

// --- handing a shift on ---------------------------------------------------------------------------------
function findShift(id) {
  for (const d of view?.days || []) for (const s of [...d.A, ...d.B]) if (s.id === id) return s;
  return null;
}

function openEditor(shift) {
  editing = shift;
  const busyThatDay = new Set(
    (view.days.find((d) => d.date === shift.date)?.A || []).concat(view.days.find((d) => d.date === shift.date)?.B || [])
      .filter((s) => s.id !== shift.id).map((s) => s.worker_id),
  );
  $("shift-title").textContent = `${dayLabel(shift.date)} · ${postLabel(shift.post, shift.grid_code)}${shift.slot ? ` ${slotText(shift.slot)}` : ""} · ${t.current}：${shift.worker_name}`;
  // An A-post of a hall in staggered hours: its slot is chosen here too (the settings' slots).
  const slots = shift.post === "A" ? settings?.a_slots || [] : [];
  const slotSelect = $("shift-slot");
  slotSelect.length = 0;
  for (const slot of slots) {
    const option = new Option(slotText(slot), slotText(slot));
    option.selected = slotText(slot) === slotText(shift.slot);
    slotSelect.add(option);
  }
  $("shift-slot-field").hidden = !slots.length;
  const select = $("shift-worker");
  select.length = 0;
  for (const w of workers) {
    const option = new Option(`${w.display_name || w.username}${busyThatDay.has(w.id) ? t.busyThatDay : ""}`, w.id);
    option.selected = w.id === shift.worker_id;
    select.add(option);
  }
  problem($("shift-error"), "");
  for (const el of document.querySelectorAll(".who.chosen")) el.classList.remove("chosen");
  document.querySelector(`.who[data-shift="${shift.id}"]`)?.classList.add("chosen");
  placeEditor(shift);
  $("shift-editor").hidden = false;
  $("shift-editor").scrollIntoView({ block: "nearest" });
  // The select takes the focus: from the keyboard, the next Tab is 保存, not the row's names.
  select.focus({ preventScroll: true });
}

/**
 * The editor in a row of its own right under the row of shift's name: below the whole table,
 * a name tapped on a phone opened it a screen away from the day and post it changes.
 * False when the name is not drawn.
 */
function placeEditor(shift) {
  const row = document.querySelector(`#grid-table .who[data-shift="${shift.id}"]`)?.closest("tr");
  if (!row) return false;
  const editorRow = document.createElement("tr");
  editorRow.className = "editor-row";
  const cell = editorRow.insertCell();
  cell.colSpan = row.cells.length;
  parkEditor();
  cell.append($("shift-editor"));
  row.after(editorRow);
  return true;
}

/** The editor back in its place under the table (hidden or not), its row gone. */
function parkEditor() {
  $("edit-hint").after($("shift-editor"));
  for (const row of document.querySelectorAll("#grid-table tr.editor-row")) row.remove();
}

function closeEditor() {
  editing = null;
  $("shift-editor").hidden = true;
  parkEditor();
  for (const el of document.querySelectorAll(".who.chosen")) el.classList.remove("chosen");
}

/** The focus back on shift `id`'s name (the editor closed from the keyboard, or saved). */
function focusShift(id) {
  document.querySelector(`button.who[data-shift="${id}"]`)?.focus();
}

async function saveShift() {
  if (!editing) return;
  const workerId = Number($("shift-worker").value);
  const shiftId = editing.id;
  const body = {};
  if (workerId !== editing.worker_id) body.worker_id = workerId;
  const slot = $("shift-slot-field").hidden ? "" : $("shift-slot").value;
  if (slot && slot !== slotText(editing.slot)) {
    const [start, end] = slot.split("–");
    body.slot = { start, end };
  }
  if (!Object.keys(body).length) {
    closeEditor();
    return focusShift(shiftId);
  }
  problem($("shift-error"), "");
  await act($("shift-save"), async () => {
    try {
      await api(`/api/v1/shifts/${shiftId}`, { method: "PATCH", body });
      await load();
      focusShift(shiftId);
    } catch (error) {
      if (!(error instanceof ApiError)) return problem($("shift-error"), t.offline, detailOf(error));
      const why = error.status === 409 ? t.editConflict : error.status === 422 ? t.editInvalid
        : error.status === 404 ? t.editGone : error.status === 403 ? t.forbidden : t.editFailed;
      problem($("shift-error"), why, detailOf(error));
    }
  });
}

// --- signing in -----------------------------------------------------------------------------------------
async function start() {
  $("toolbar").hidden = false;
  $("main").hidden = false;
  const langLink = $("lang");
  langLink.textContent = t.other;
  langLink.href = otherLangHref(lang);
  keepFresh();
  try {
    me = await api("/api/v1/auth/me");
  } catch (error) {
    if (error.status === 401) return signOutAndReload();
    const notice = $("notice");
    notice.textContent = t.loadFailed + detailOf(error);
    notice.hidden = false;
    return;
  }
  $("who").textContent = `${me.display_name || me.username} · ${t.roles[me.role] || me.role}`;
  if (!EDITORS.includes(me.role) || !me.community_code) {
    $("notice").textContent = t.notAllowed;
    $("notice").hidden = false;
    document.body.dataset.ready = "1";
    return;
  }
  code = me.community_code;
  const asked = new URLSearchParams(location.search).get("week");
  week = asked && WEEK_RE.test(asked) ? asked : shiftWeek(isoWeek(), 1);
  const [loadedSettings, grids, users] = await Promise.all([
    api(`/api/v1/communities/${code}/roster-settings`).catch(() => null),
    apiPages(`/api/v1/grids?community=${code}`, { pick: (b) => b?.features || [] }).catch(() => []),
    apiPages("/api/v1/users?active=true").catch(() => []),
  ]);
  settings = loadedSettings;
  gridNames = new Map(grids.map((f) => [f.properties.code, f.properties.name]));
  workers = users
    .filter((u) => ["worker", "grid_leader"].includes(u.role) && (!u.community_code || u.community_code === code))
    .sort((a, b) => (a.display_name || "").localeCompare(b.display_name || "", "zh"));
  $("roster").hidden = false;
  cards = initSettings({
    lang, code, me, workerNames,
    weekStatus: () => view?.status || null,
    onSettings: (saved) => { settings = saved; render(); },
  });
  $("prev-week").addEventListener("click", () => goTo(shiftWeek(week, -1)));
  $("next-week").addEventListener("click", () => goTo(shiftWeek(week, 1)));
  $("generate").addEventListener("click", onGenerate);
  $("regenerate-ok").addEventListener("click", () => { $("confirm-regenerate").hidden = true; generate(); });
  $("regenerate-cancel").addEventListener("click", () => { $("confirm-regenerate").hidden = true; });
  $("publish").addEventListener("click", onPublish);
  $("confirm-ok").addEventListener("click", () => publish(true));
  $("confirm-cancel").addEventListener("click", () => { $("confirm-publish").hidden = true; });
  $("shift-save").addEventListener("click", saveShift);
  const cancelEdit = () => {
    const id = editing?.id;
    closeEditor();
    focusShift(id);
  };
  $("shift-cancel").addEventListener("click", cancelEdit);
  $("shift-editor").addEventListener("keydown", (e) => {
    if (e.key === "Escape") cancelEdit();
  });
  $("grid-table").addEventListener("click", (e) => {
    const button = e.target.closest("button.who");
    const shift = button && findShift(Number(button.dataset.shift));
    if (shift) openEditor(shift);
  });
  const deadlines = initTaskSettings({ lang, code, me, section: $("task-settings") });
  await load();
  await Promise.all([cards.load(settings), deadlines.load()]);
  document.body.dataset.ready = "1";
}

bootPage({ lang, t, start });
