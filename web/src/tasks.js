// The tasks' ledger (/tasks, 工单台账): every task of the week, whatever its state, for the
// community office answering for the week's figures (the rates, the weekly report count the
// tasks opened in the week) and for the 12345 hotline asking after a ticket, closed or not.
// The workers' app lists open tasks only; a task closed left every page.
//
// Filters: the week (opened then, Beijing time), the state, the source, overdue, and a ticket
// number (which looks in every week). A task's title opens its page (task_detail.js), where the
// leader may take their steps (call back, close, reopen). The API decides what each reads
// (GET /api/v1/tasks: a leader their grids', an admin their community's, a viewer their
// district's); a worker is told the page is the office's.
import {
  TASK_TEXT, apiBlob, apiOnce, apiPage, apiPages, beijingTime, escapeHtml, isoWeek, pageWords, saveBlob, shiftWeek,
  urgencyOption,
} from "./common.js";
import { bootPage, openPage } from "./password.js";
import { taskDetail } from "./task_detail.js";

const PAGE_SIZE = 50;
const READERS = ["grid_leader", "community_admin", "district_viewer"];
const CAMPAIGNERS = ["grid_leader", "community_admin"]; // POST /communities/{code}/campaigns
// The states a filter choice stands for (api/services/tasks.py: OPEN_STATUSES, RESOLVED_STATUSES).
const STATES = {
  open: ["new", "dispatched", "accepted", "in_progress", "returned", "escalated", "reopened"],
  done: ["resolved", "callback"],
  closed: ["closed"],
  transferred: ["transferred"],
};

const TEXT = {
  zh: {
    title: "工单台账", username: "用户名", password: "密码", signIn: "登录", signOut: "退出", other: "English",
    badLogin: "用户名或密码错误", signinFailed: "登录失败：",
    toMap: "← 网格地图", toReports: "走访覆盖周报", toRegister: "住户登记册", toWindow: "登记诉求和12345工单",
    role_grid_leader: "网格长", role_community_admin: "社区管理员", role_district_viewer: "街道/区级查看", role_worker: "网格员",
    intro: "本周登记的全部工单（含已办结、已关闭、已改派），与周报和三率统计的工单相同，最新登记的在前。输入工单号则在全部周次中查找。",
    prevWeek: "‹ 上一周", nextWeek: "下一周 ›", week: "登记周次",
    state: "状态", state_all: "全部", state_open: "未办结", state_done: "已办结待回访", state_closed: "已关闭", state_transferred: "已改派",
    community: (code) => `只显示社区 ${code} 的工单`, street: (code) => `只显示街道 ${code} 的工单`, communityClear: "显示全部",
    source: "来源", source_all: "全部来源", list: "清单", list_all: "不限", overdueOnly: "只看超期未办结", ticket: "12345工单号",
    colOpened: "登记时间", colTask: "工单", colGrid: "网格", colState: "状态", colAssignee: "承办人", colDue: "办结期限",
    colDone: "办结时间", colSatisfaction: "回访满意度",
    satisfactions: { satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意" },
    unassigned: "未分派", overdue: "已超期",
    prev: "上一页", next: "下一页",
    pageInfo: (page, pages, total) => `第 ${page}/${pages} 页 · 共 ${total} 件`,
    none: "没有符合条件的工单。", noTicket: (n) => `没有工单号为 ${n} 的工单（或不在您的管辖范围内）。`, loading: "正在读取…",
    notForYou: "工单台账由网格长、社区管理员和街道/区级查看人员查阅；您的任务在网格员应用中。",
    failed: "读取失败：",
    campaign: "发起巡查（未诉先办：每个网格一件）",
    campaignHow: "在您负责的每个网格各开一件巡查任务，派给各网格当班的网格员，如汛期前清理雨水口、大风天前排查高空坠物。",
    campaignTitle: "任务名称", campaignWhat: "要做什么", campaignUrgency: "时限", campaignOpen: "在各网格发起",
    campaignNeedsTitle: "请填写任务名称。", campaignDone: (n) => `已在 ${n} 个网格发起，见下方本周工单。`,
    campaignFailed: "未能发起：", campaignGrids: "在哪些网格", campaignAll: "我负责的全部网格",
    campaignNoGrid: "请至少选择一个网格。", campaignGridsFailed: "未能读取网格（将在全部网格发起）：",
    download: "下载台账（当前筛选的全部工单）：", downloadXlsx: "Excel", downloadCsv: "CSV", downloading: "正在下载…",
    downloadFailed: "下载失败：",
  },
  en: {
    title: "Task ledger", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out", other: "中文",
    badLogin: "Wrong username or password", signinFailed: "Sign-in failed: ",
    toMap: "← Grid map", toReports: "Weekly report", toRegister: "Resident register", toWindow: "Register requests and 12345 tickets",
    role_grid_leader: "Grid leader", role_community_admin: "Community admin", role_district_viewer: "District viewer", role_worker: "Grid worker",
    intro: "Every task opened in the week (resolved, closed and re-dispatched ones too): the tasks the weekly report and the three rates count, last opened first. A ticket number is looked for in every week.",
    prevWeek: "‹ Previous week", nextWeek: "Next week ›", week: "Opened in week",
    state: "State", state_all: "All", state_open: "Open", state_done: "Resolved, to call back", state_closed: "Closed", state_transferred: "Re-dispatched",
    community: (code) => `Community ${code}'s tasks only`, street: (code) => `Street ${code}'s tasks only`, communityClear: "Show all",
    source: "Source", source_all: "Every source", list: "List", list_all: "Any", overdueOnly: "Only overdue and open", ticket: "12345 ticket number",
    colOpened: "Opened", colTask: "Task", colGrid: "Grid", colState: "State", colAssignee: "Assignee", colDue: "Deadline",
    colDone: "Resolved", colSatisfaction: "Satisfaction",
    satisfactions: { satisfied: "satisfied", basically_satisfied: "basically satisfied", unsatisfied: "unsatisfied" },
    unassigned: "unassigned", overdue: "overdue",
    prev: "Previous", next: "Next",
    pageInfo: (page, pages, total) => `Page ${page} of ${pages} · ${total} tasks`,
    none: "No tasks match.", noTicket: (n) => `No task of ticket ${n} (or none of yours).`, loading: "Loading…",
    notForYou: "Grid leaders, community admins and district viewers read the task ledger; your tasks are in the workers' app.",
    failed: "It could not be read: ",
    campaign: "Open a check in every grid (act before the complaint)",
    campaignHow: "Opens one task in each grid you lead, dispatched to its worker on duty: drains cleared before the rains, what may fall checked before a windy day.",
    campaignTitle: "Task", campaignWhat: "What to do", campaignUrgency: "Time allowed", campaignOpen: "Open it in every grid",
    campaignNeedsTitle: "Give the task a name.", campaignDone: (n) => `Opened in ${n} grids: see this week's tasks below.`,
    campaignFailed: "Not opened: ", campaignGrids: "In which grids", campaignAll: "Every grid I lead",
    campaignNoGrid: "Choose at least one grid.", campaignGridsFailed: "The grids could not be read (it goes to every grid): ",
    download: "Download the ledger (every task these filters find): ", downloadXlsx: "Excel", downloadCsv: "CSV",
    downloading: "Downloading…", downloadFailed: "The download failed: ",
  },
};
const { lang, t } = pageWords(TEXT);
const words = TASK_TEXT[lang];

const $ = (selector) => document.querySelector(selector);
const when = (value) => (value ? beijingTime(value, lang) : "");
const detail = taskDetail({ lang, dialog: $("#task-detail"), localTime: (date) => beijingTime(date, lang), changed: () => load() });
const state = { week: isoWeek(), community: "", street: "", page: 1, asked: 0 };

function say(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
  el.hidden = !text;
}

/** The page's filters as the address keeps them (a link to the page opens the same list). */
function filters() {
  return {
    week: state.week,
    state: $("#filter-state").value,
    source: $("#filter-source").value,
    list: $("#filter-list").value,
    overdue: $("#filter-overdue").checked,
    ticket: $("#filter-ticket").value.trim(),
    community: state.community,
    street: state.street,
  };
}

function keepInAddress() {
  const f = filters();
  const url = new URL(location.href);
  const kept = { week: f.week, state: f.state, source: f.source, list: f.list, overdue: f.overdue ? "1" : "", ticket: f.ticket, community: f.community, street: f.street };
  for (const [key, value] of Object.entries(kept)) {
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
  }
  history.replaceState(null, "", url);
}

function fromAddress() {
  const params = new URLSearchParams(location.search);
  const week = params.get("week");
  if (week && /^\d{4}-W\d{2}$/.test(week)) state.week = week;
  if (STATES[params.get("state")]) $("#filter-state").value = params.get("state");
  if (words.sources[params.get("source")]) $("#filter-source").value = params.get("source");
  if (words.lists[params.get("list")]) $("#filter-list").value = params.get("list");
  $("#filter-overdue").checked = params.get("overdue") === "1";
  $("#filter-ticket").value = params.get("ticket") || "";
  // From the weekly report of one community or street (a district viewer's choice): its tasks only.
  const community = params.get("community");
  if (community && /^\d{12}$/.test(community)) state.community = community;
  const street = params.get("street");
  if (street && /^\d{9}$/.test(street)) state.street = street;
  showCommunity();
}

function showCommunity() {
  const label = state.community ? t.community(state.community) : state.street ? t.street(state.street) : "";
  $("#community-label").textContent = label;
  $("#community-chosen").hidden = !label;
}

/** GET /api/v1/tasks's query: a ticket number is looked for in every week. */
function query(f) {
  const q = new URLSearchParams({ sort: "newest" });
  if (f.ticket) q.set("external_id", f.ticket);
  else q.set("week", f.week);
  for (const status of STATES[f.state] || []) q.append("status", status);
  if (f.source) q.set("source", f.source);
  if (f.list) q.set("list", f.list);
  if (f.overdue) q.set("overdue", "true");
  if (f.community) q.set("community", f.community);
  if (f.street) q.set("street", f.street);
  return q.toString();
}

function row(task) {
  const origin = [words.sources[task.source] || task.source, task.external_id, words.lists[task.list]]
    .filter(Boolean).join(" ");
  const ticket = `<span class="ticket">${escapeHtml(origin)}</span>`;
  const assignee = task.assignee_name || (task.assignee_id ? `#${task.assignee_id}` : t.unassigned);
  const due = `${escapeHtml(when(task.due_at))}${task.overdue ? ` · ${escapeHtml(t.overdue)}` : ""}`;
  // On a phone each row is a card, each cell under its heading (accounts.css: data-label).
  const cell = (name, label, html) => `<td class="col-${name}" data-label="${escapeHtml(label)}">${html}</td>`;
  return `<tr data-id="${task.id}"${task.overdue ? ' class="late"' : ""}>
    ${cell("when", t.colOpened, escapeHtml(when(task.created_at)))}
    <td class="col-task"><button type="button" class="open-task" data-open="${task.id}">${escapeHtml(task.title)}</button>${ticket}</td>
    ${cell("grid", t.colGrid, escapeHtml(task.grid_code || ""))}
    ${cell("state", t.colState, escapeHtml(words.statuses[task.status] || task.status))}
    ${cell("assignee", t.colAssignee, escapeHtml(assignee))}
    ${cell("due", t.colDue, due)}
    ${cell("done", t.colDone, escapeHtml(when(task.resolved_at || task.closed_at)))}
    ${cell("satisfaction", t.colSatisfaction, escapeHtml(t.satisfactions[task.satisfaction] || ""))}</tr>`;
}

async function load() {
  const asked = ++state.asked;
  const f = filters();
  keepInAddress();
  $("#week").value = state.week;
  $("#week").disabled = $("#week-prev").disabled = Boolean(f.ticket);
  $("#week-next").disabled = Boolean(f.ticket) || state.week >= isoWeek();
  say(t.loading);
  delete $("#tasks").dataset.loaded; // set again once this list is drawn (tests wait for it)
  let items;
  let pagination;
  try {
    ({ items, pagination } = await apiPage(`/api/v1/tasks?${query(f)}`, { page: state.page, pageSize: PAGE_SIZE }));
  } catch (error) {
    if (asked !== state.asked) return;
    say(t.failed + (error.body?.detail || error.message), true);
    return;
  }
  if (asked !== state.asked) return;
  $("#tasks tbody").innerHTML = items.map(row).join("");
  const total = pagination?.total ?? items.length;
  const pages = Math.max(1, pagination?.total_pages ?? 1);
  say(items.length ? "" : f.ticket ? t.noTicket(f.ticket) : t.none);
  $("#page-info").textContent = t.pageInfo(state.page, pages, total);
  $("#prev").disabled = state.page <= 1;
  $("#next").disabled = state.page >= pages;
  $("#tasks").dataset.loaded = "1";
}

/** The ledger as a file (GET /api/v1/tasks/export): every task the filters find, not a page. */
async function download(fmt) {
  const f = filters();
  const status = $("#download-status");
  const buttons = [$("#download-xlsx"), $("#download-csv")];
  const name = ["工单台账", f.ticket || f.week, f.street, f.community].filter(Boolean).join("-");
  buttons.forEach((b) => { b.disabled = true; });
  status.textContent = t.downloading;
  status.classList.remove("error");
  try {
    saveBlob(await apiBlob(`/api/v1/tasks/export?${query(f)}&format=${fmt}`), `${name}.${fmt}`);
    status.textContent = "";
  } catch (error) {
    status.textContent = t.downloadFailed + (error.body?.detail || error.message);
    status.classList.add("error");
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function reload() {
  state.page = 1;
  load();
}

function goToWeek(week) {
  if (!week || week > isoWeek()) return;
  state.week = week;
  reload();
}

async function start() {
  const me = await openPage({ lang, t, fail: (error) => say(t.failed + error.message, true) });
  if (!me) return;
  $("#who").textContent = `${me.display_name || me.username} · ${t[`role_${me.role}`] || me.role}`;
  if (!READERS.includes(me.role)) {
    $("#notice").textContent = t.notForYou;
    $("#notice").hidden = false;
    document.body.dataset.ready = "1";
    return;
  }
  $("#tasks-section").hidden = false;
  state.me = me;
  $("#campaign").hidden = !CAMPAIGNERS.includes(me.role);
  // The office registers the 12345 hotline's tickets on the window's page (its admin).
  $("#to-window").hidden = me.role !== "community_admin";
  fromAddress();
  await load();
  document.body.dataset.ready = "1";
}

$("#filter-list").insertAdjacentHTML("beforeend", Object.entries(words.lists)
  .map(([value, label]) => `<option value="${value}">${escapeHtml(label)}</option>`).join(""));
$("#filter-source").insertAdjacentHTML("beforeend", Object.entries(words.sources)
  .map(([value, label]) => `<option value="${value}">${escapeHtml(label)}</option>`).join(""));
$("#week").max = isoWeek();
$("#week-prev").addEventListener("click", () => goToWeek(shiftWeek(state.week, -1)));
$("#week-next").addEventListener("click", () => goToWeek(shiftWeek(state.week, 1)));
$("#week").addEventListener("change", (e) => goToWeek(e.target.value));
for (const id of ["#filter-state", "#filter-source", "#filter-list", "#filter-overdue"]) $(id).addEventListener("change", reload);
let typing = null;
$("#filter-ticket").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(reload, 300);
});
$("#tasks").addEventListener("click", (e) => {
  const opener = e.target.closest("button[data-open]");
  if (opener) detail.open(Number(opener.dataset.open));
});
$("#community-clear").addEventListener("click", () => {
  state.community = state.street = "";
  showCommunity();
  reload();
});
$("#download-xlsx").addEventListener("click", () => download("xlsx"));
$("#download-csv").addEventListener("click", () => download("csv"));
$("#prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); load(); });
$("#next").addEventListener("click", () => { state.page += 1; load(); });

// 发起巡查: one check in every grid the caller leads (POST /communities/{code}/campaigns), sent
// once (`apiOnce`: a retry after a lost answer gets the first answer, no second round).
const campaignForm = $("#campaign-form");
campaignForm.elements.urgency.innerHTML = Object.keys(words.urgencies)
  .map((u) => `<option value="${u}"${u === "general" ? " selected" : ""}>${escapeHtml(urgencyOption(lang, u))}</option>`).join("");
function campaignSays(text, isError = false) {
  const el = $("#campaign-status");
  el.textContent = text;
  el.classList.toggle("error", isError);
  el.hidden = !text;
}
// The grids it may go to: the admin's every grid, a leader's own (the API's rule). Read when the
// form is first opened; all of them unless some are chosen (then `grids`: those only).
let campaignGrids = null;
async function showCampaignGrids() {
  if (campaignGrids) return;
  campaignGrids = [];
  let features;
  try {
    features = await apiPages(`/api/v1/grids?community=${state.me.community_code}`, { pick: (b) => b?.features || [] });
  } catch (error) { // read again when the form is next opened; meanwhile it goes to every grid
    campaignGrids = null;
    campaignSays(t.campaignGridsFailed + (error.body?.detail || error.message), true);
    return;
  }
  campaignGrids = features.map((f) => f.properties)
    .filter((g) => state.me.role === "community_admin" || g.leader_id === state.me.id);
  $("#campaign-grid-list").innerHTML = campaignGrids.map((g) => `<label class="check"><input type="checkbox"
    name="grid" value="${escapeHtml(g.code)}" checked> ${escapeHtml(g.name || g.code)} <span class="muted">${escapeHtml(g.code)}</span></label>`).join("");
  $("#campaign-grids").hidden = campaignGrids.length < 2;
}
$("#campaign").addEventListener("toggle", () => { if ($("#campaign").open) showCampaignGrids(); });
$("#campaign-all").addEventListener("change", (e) => {
  for (const box of campaignForm.querySelectorAll("input[name=grid]")) box.checked = e.target.checked;
});
$("#campaign-grid-list").addEventListener("change", () => {
  const boxes = [...campaignForm.querySelectorAll("input[name=grid]")];
  $("#campaign-all").checked = boxes.every((b) => b.checked);
});

campaignForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const title = campaignForm.elements.title.value.trim();
  if (!title) return campaignSays(t.campaignNeedsTitle, true);
  const body = { title, description: campaignForm.elements.description.value, urgency: campaignForm.elements.urgency.value };
  const boxes = [...campaignForm.querySelectorAll("input[name=grid]")];
  const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
  if (boxes.length && !chosen.length) return campaignSays(t.campaignNoGrid, true);
  if (chosen.length < boxes.length) body.grids = chosen;
  const button = campaignForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const opened = await apiOnce(`/api/v1/communities/${state.me.community_code}/campaigns`, { method: "POST", body });
    campaignForm.reset();
    campaignSays(t.campaignDone(opened.created));
    state.week = isoWeek();
    reload();
  } catch (error) {
    campaignSays(t.campaignFailed + (error.body?.detail || error.message), true);
  } finally {
    button.disabled = false;
  }
});

bootPage({ lang, t, start });
