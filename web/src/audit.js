// The audit log's page (/audit, 审计日志): who read or changed residents' personal data, for the
// community office answering a resident ("who looked at my file?") or checking a worker's reads.
// Filters: a user of the community, a household (by its address, or `?household=ID` from the
// register's row), an action and the days; the API's two views: by the community's users
// (readers) or about the community's records, whoever read them (records).
//
// The API decides who may read the log (GET /api/v1/audit, api/services/audit.py): community
// admins their community's, district viewers their district's; workers and grid leaders are told
// the page is the office's.
import {
  api, apiPage, apiPages, beijingTime, escapeHtml, householdAddress, pageWords,
} from "./common.js";
import { bootPage, openPage } from "./password.js";

const PAGE_SIZE = 50;
const READERS = ["community_admin", "district_viewer"]; // who may read the log
const SHOWN_IDS = 3; // a list read names up to hundreds: the first few, and how many

const TEXT = {
  zh: {
    title: "审计日志", username: "用户名", password: "密码", signIn: "登录", signOut: "退出", other: "English",
    badLogin: "用户名或密码错误", signinFailed: "登录失败：",
    toMap: "← 网格地图", toAccounts: "账号管理", toRegister: "住户登记册", toReports: "走访覆盖周报",
    role_grid_leader: "网格长", role_community_admin: "社区管理员", role_district_viewer: "街道/区级查看", role_worker: "网格员",
    intro: "每次查看或修改住户个人信息都记录在此（至少保存 184 天），最新的在前。",
    view: "查看方式", view_readers: "本社区人员的操作", view_records: "本社区住户的信息被谁查看（含其他社区、街道/区级人员）",
    user: "人员", allUsers: "全部人员", household: "住户（按地址查找）", addressPlaceholder: "如 7号楼 2单元 502",
    action: "操作", allActions: "全部操作", since: "起始日期", until: "截止日期（含当日）",
    action_read: "查看", action_create: "新增", action_update: "修改", action_export: "导出", action_purge: "清理过期记录",
    when: "时间", whoCol: "人员", what: "对象", detail: "涉及信息",
    console: "系统（服务器命令）", unknownUser: (id) => `用户 ${id}`,
    resource_household: "住户", resource_visit: "走访记录", resource_visit_photo: "走访照片", resource_task: "任务",
    resource_task_photo: "任务照片", resource_coverage_report: "走访覆盖周报", resource_report: "周报", resource_audit_log: "审计日志",
    idsMore: (n) => `等 ${n} 条`, count: (n) => `${n} 条`,
    fields: {
      address: "地址", location: "位置", members: "人数", tags: "标签", phone: "电话", notes: "备注",
      last_visited: "上次走访", last_attempt: "上次上门未遇", must_visit: "必访", visit_status: "走访状态",
      worker: "网格员", outcome: "走访结果", visited_at: "走访时间", observations: "走访所见", raw_location: "原始定位",
      photo: "照片", title: "标题", description: "描述", status: "状态", complainant: "诉求人", source: "来源",
      follow_up_note: "跟进说明", grid_id: "网格", household: "住户", visit: "走访", task: "任务",
    },
    inList: (n) => `（列表读取，共 ${n} 户）`,
    purged: (n) => `删除 ${n} 条`, purgedBefore: (when) => `早于 ${when} 的记录`,
    notYours: (id) => `找不到该住户（${id}），或不在您的管辖范围内：下面是全部记录。`,
    switchedOff: "已停用",
    chosen: (a) => `住户：${a} 的全部记录（含其走访和任务，不论谁查看）`, chosenId: (id) => `住户 ${id}`,
    clearHousehold: "清除", noMatch: "没有找到该地址的住户。", tooManyWords: "地址最多四个词（楼栋、单元、楼层、房号）。",
    removed: "已移出", badPeriod: "截止日期不能早于起始日期。",
    prev: "上一页", next: "下一页",
    pageInfo: (page, pages, total) => `第 ${page}/${pages} 页 · 共 ${total} 条`, pageOnly: (page) => `第 ${page} 页`,
    none: "没有符合条件的记录。", loading: "正在读取…",
    notForYou: "审计日志由社区管理员和街道/区级查看人员查阅，此页面不对您开放。",
    failed: "操作失败：",
  },
  en: {
    title: "Audit log", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out", other: "中文",
    badLogin: "Wrong username or password", signinFailed: "Sign-in failed: ",
    toMap: "← Grid map", toAccounts: "Accounts", toRegister: "Resident register", toReports: "Weekly report",
    role_grid_leader: "Grid leader", role_community_admin: "Community admin", role_district_viewer: "District viewer", role_worker: "Grid worker",
    intro: "Every read or change of residents' personal data is written here (kept at least 184 days), newest first.",
    view: "Show", view_readers: "What the community's people did", view_records: "Who read the community's residents' data (other communities and district viewers too)",
    user: "Person", allUsers: "Everyone", household: "Household (find by address)", addressPlaceholder: "e.g. 7 2 502",
    action: "Action", allActions: "All actions", since: "From", until: "To (that day included)",
    action_read: "Read", action_create: "Created", action_update: "Changed", action_export: "Exported", action_purge: "Old entries purged",
    when: "When", whoCol: "Who", what: "What", detail: "Data shown",
    console: "The system (a server command)", unknownUser: (id) => `user ${id}`,
    resource_household: "Household", resource_visit: "Visit record", resource_visit_photo: "Visit photo", resource_task: "Task",
    resource_task_photo: "Task photo", resource_coverage_report: "Coverage report", resource_report: "Weekly report", resource_audit_log: "Audit log",
    idsMore: (n) => `and more, ${n} in all`, count: (n) => `${n}`,
    fields: {
      last_visited: "last visited", last_attempt: "last attempt", must_visit: "must visit", visit_status: "visit status",
      visited_at: "visited at", raw_location: "raw location", follow_up_note: "follow-up note", grid_id: "grid",
    },
    inList: (n) => ` (a list read, ${n} households)`,
    purged: (n) => `${n} deleted`, purgedBefore: (when) => `those before ${when}`,
    notYours: (id) => `No household ${id} of yours: the whole log is shown.`,
    switchedOff: "switched off",
    chosen: (a) => `Household ${a}: every entry (its visits and tasks too, whoever read them)`, chosenId: (id) => `household ${id}`,
    clearHousehold: "Clear", noMatch: "No household at that address.", tooManyWords: "At most four words (building, unit, floor, room).",
    removed: "removed", badPeriod: "The last day cannot be before the first.",
    prev: "Previous", next: "Next",
    pageInfo: (page, pages, total) => `Page ${page} of ${pages} · ${total} entries`, pageOnly: (page) => `Page ${page}`,
    none: "No entries match.", loading: "Loading…",
    notForYou: "Community admins and district viewers read the audit log: this page is not for you.",
    failed: "It failed: ",
  },
};
const { lang, t } = pageWords(TEXT);

const $ = (selector, root = document) => root.querySelector(selector);
const listSep = lang === "zh" ? "、" : ", ";
const state = {
  me: null,
  users: new Map(), // the accounts the caller may look up, by id: {username, display_name, role}
  household: null, // {id, label} chosen, or null
  page: 1,
  // Page n goes on from the last entry of page n-1 (`before`): entries are written all day,
  // and page numbers shifted by those written meanwhile repeated entries already read.
  cursors: [null], // per page, the id it goes on from
  total: null, // the entries matching, as counted on the first page
  listAsked: 0, // only the last list asked for is shown
  addressAsked: 0,
};

function say(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
  el.hidden = !text;
}

const roleName = (role) => t[`role_${role}`] || role;

function whoCell(entry) {
  if (entry.user_id == null) return `<span class="muted">${escapeHtml(t.console)}</span>`;
  const user = state.users.get(entry.user_id);
  if (!user) {
    // Not one of the caller's users (a reliever from another community, a district viewer):
    // the username the log keeps.
    return escapeHtml(entry.username || t.unknownUser(entry.user_id));
  }
  const name = user.display_name || user.username;
  return `<b>${escapeHtml(name)}</b> <span class="muted">${escapeHtml(user.username)} · ${escapeHtml(roleName(user.role))}</span>`;
}

function whatCell(entry) {
  const kind = t[`resource_${entry.resource}`] || entry.resource;
  const ids = entry.resource_ids || [];
  const uuids = entry.resource_uuids || [];
  if (entry.resource === "household" && state.household && ids.includes(state.household.id)) {
    // The household asked about: by its address, and whether it was read alone or in a list.
    const list = ids.length > 1 ? t.inList(ids.length) : "";
    return `${escapeHtml(kind)} ${escapeHtml(state.household.label)}${escapeHtml(list)}`;
  }
  if (entry.resource === "household" && ids.length) {
    // Each household its own history's link; their addresses are not read here (every read
    // of one is itself an entry of this log).
    const links = ids.slice(0, SHOWN_IDS).map((id) => `<a class="record" href="${audithref(id)}">#${id}</a>`).join(listSep);
    const more = ids.length > SHOWN_IDS ? ` ${escapeHtml(t.idsMore(ids.length))}` : "";
    return `${escapeHtml(kind)} ${links}${more}`;
  }
  if (ids.length) {
    const more = ids.length > SHOWN_IDS ? ` ${escapeHtml(t.idsMore(ids.length))}` : "";
    return `${escapeHtml(kind)} ${ids.slice(0, SHOWN_IDS).map((id) => `#${id}`).join(listSep)}${more}`;
  }
  if (uuids.length) return `${escapeHtml(kind)} ${escapeHtml(t.count(uuids.length))}`;
  return escapeHtml(kind);
}

/** A field an entry names, in the page's words; a purge's two (api/services/audit.py
 * `purge_entries`: "removed N", "before <cutoff>") as sentences, the cutoff in Beijing time. */
function fieldName(field) {
  const removed = /^removed (\d+)$/.exec(field);
  if (removed) return t.purged(removed[1]);
  const before = /^before (.+)$/.exec(field);
  if (before) return t.purgedBefore(beijingTime(before[1], lang));
  return t.fields[field] || field;
}

function detailCell(entry) {
  const fields = (entry.fields || []).map(fieldName).join(listSep);
  const path = entry.path ? `<small class="muted path">${escapeHtml(entry.path)}</small>` : "";
  return `${escapeHtml(fields) || `<span class="muted">—</span>`}${path}`;
}

function audithref(id) {
  const url = new URL("/audit", location.origin);
  url.searchParams.set("household", id);
  return escapeHtml(url.pathname + url.search);
}

function rowHtml(entry) {
  const cell = (name, label, html) => `<td class="col-${name}" data-label="${escapeHtml(label)}">${html}</td>`;
  return `<tr data-id="${entry.id}">
    <td class="col-when">${escapeHtml(beijingTime(entry.at, lang))}</td>
    ${cell("who", t.whoCol, whoCell(entry))}
    ${cell("what", t.what, whatCell(entry))}
    ${cell("action", t.action, escapeHtml(t[`action_${entry.action}`] || entry.action))}
    ${cell("detail", t.detail, detailCell(entry))}</tr>`;
}

/** A day typed (YYYY-MM-DD) as the moment it begins in Beijing. */
const dayStart = (day) => `${day}T00:00:00+08:00`;
function dayAfter(day) {
  const next = new Date(`${day}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString().slice(0, 10);
}

function filters() {
  const query = new URLSearchParams();
  query.set("view", document.querySelector("input[name=view]:checked").value);
  if ($("#filter-user").value) query.set("user", $("#filter-user").value);
  if (state.household) query.set("household", state.household.id);
  if ($("#filter-action").value) query.set("action", $("#filter-action").value);
  const since = $("#filter-since").value;
  const until = $("#filter-until").value;
  if (since) query.set("since", dayStart(since));
  if (until) query.set("until", dayStart(dayAfter(until))); // the last day included
  return query;
}

/** Whether the API answers `query` from the records view, counted up to the next page only
 * (a household or the purges asked for are listed and counted whole). */
const walked = (query) =>
  query.get("view") === "records" && !query.has("household") && query.get("action") !== "purge";

function emptyRow(html, cls = "muted") {
  return `<tr><td colspan="5" class="empty ${cls}">${html}</td></tr>`;
}

async function loadEntries() {
  const body = $("#entries tbody");
  const asked = ++state.listAsked;
  const since = $("#filter-since").value;
  const until = $("#filter-until").value;
  if (since && until && until < since) {
    body.innerHTML = emptyRow(escapeHtml(t.badPeriod), "error");
    $("#page-info").textContent = "";
    $("#prev").disabled = $("#next").disabled = true;
    return;
  }
  body.innerHTML = `<tr><td colspan="5" class="muted">${t.loading}</td></tr>`;
  try {
    const query = filters();
    const before = state.cursors[state.page - 1];
    if (before) query.set("before", before);
    const { items, pagination } = await apiPage(`/api/v1/audit?${query}`, { page: 1, pageSize: PAGE_SIZE });
    if (asked !== state.listAsked) return;
    body.innerHTML = items.map(rowHtml).join("") || emptyRow(escapeHtml(t.none));
    // The records view is not counted whole (the API walks the log newest first, and counts
    // no further than the next page's first entry): while there is a next page, its pages are
    // numbered, not counted.
    const counted = !walked(query) || (state.page === 1 && !pagination?.next_page);
    if (state.page === 1) state.total = counted ? (pagination?.total ?? items.length) : null;
    if (state.total == null) {
      $("#page-info").textContent = t.pageOnly(state.page);
    } else {
      const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE), state.page);
      $("#page-info").textContent = t.pageInfo(state.page, pages, state.total);
    }
    state.cursors[state.page] = items.length ? items[items.length - 1].id : null;
    $("#prev").disabled = state.page <= 1;
    $("#next").disabled = !pagination?.next_page;
  } catch (error) {
    if (asked !== state.listAsked) return;
    body.innerHTML = emptyRow(escapeHtml(t.failed + error.message), "error");
  }
}

function reload() {
  state.page = 1;
  state.cursors = [null];
  loadEntries();
}

// --- the household: by its address, or the register's link ---------------------------------------
const householdLabel = (h) => `${householdAddress(h, lang)}${h.removal ? ` (${t.removed})` : ""}`;

function showChosen() {
  const chosen = state.household;
  $("#household-chosen").hidden = !chosen;
  $("#household-label").textContent = chosen ? t.chosen(chosen.label) : "";
  keepInAddress();
}

/** The household and the person asked about stay in the page's address: a reload, a link sent
 * to a colleague, the same list. */
function keepInAddress() {
  const url = new URL(location.href);
  const asked = { household: state.household?.id, user: $("#filter-user").value };
  for (const [name, value] of Object.entries(asked)) {
    if (value) url.searchParams.set(name, value);
    else url.searchParams.delete(name);
  }
  history.replaceState(null, "", url);
}

function choose(household) {
  state.household = household;
  $("#filter-address").value = "";
  $("#address-results").hidden = true;
  showChosen();
  reload();
}

async function findAddress() {
  const words = $("#filter-address").value.trim();
  const box = $("#address-results");
  const asked = ++state.addressAsked;
  if (!words) {
    box.hidden = true;
    return;
  }
  try {
    const query = new URLSearchParams({ address: words, status: "all" });
    const { items } = await apiPage(`/api/v1/households?${query}`, { page: 1, pageSize: 10 });
    if (asked !== state.addressAsked) return;
    box.innerHTML = items.map((h) =>
      `<button type="button" data-id="${h.id}" data-label="${escapeHtml(householdLabel(h))}">${escapeHtml(householdLabel(h))}</button>`).join("")
      || `<p class="muted">${escapeHtml(t.noMatch)}</p>`;
  } catch (error) {
    if (asked !== state.addressAsked) return;
    const why = error.body?.errors?.query?.address ? t.tooManyWords : t.failed + error.message;
    box.innerHTML = `<p class="error">${escapeHtml(why)}</p>`;
  }
  box.hidden = false;
}

$("#address-results").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-id]");
  if (button) choose({ id: Number(button.dataset.id), label: button.dataset.label });
});
$("#household-clear").addEventListener("click", () => choose(null));

/** `?household=ID` (the register's 审计 on a household's row): that household's history. */
async function openLinked() {
  const id = Number(new URLSearchParams(location.search).get("household"));
  if (!Number.isInteger(id) || id <= 0) return;
  try {
    const h = await api(`/api/v1/households/${id}`);
    state.household = { id, label: householdLabel(h) };
  } catch (error) {
    // Not one of the caller's households (404): said, and the whole log shown instead.
    say(error.status === 404 ? t.notYours(id) : t.failed + error.message, true);
    state.household = null;
  }
  showChosen();
}

// --- the page -----------------------------------------------------------------------------------
async function loadUsers() {
  try {
    const users = await apiPages("/api/v1/users");
    state.users = new Map(users.map((u) => [u.id, u]));
  } catch { /* names are a help: usernames are shown without them */ }
  const order = ["community_admin", "grid_leader", "worker", "district_viewer"];
  const sorted = [...state.users.values()].sort((a, b) =>
    (order.indexOf(a.role) - order.indexOf(b.role)) || (a.display_name || a.username).localeCompare(b.display_name || b.username, "zh"));
  $("#filter-user").insertAdjacentHTML("beforeend", sorted.map((u) =>
    `<option value="${u.id}">${escapeHtml(`${u.display_name || u.username}（${u.username}）· ${roleName(u.role)}${u.active === false ? ` · ${t.switchedOff}` : ""}`)}</option>`).join(""));
}

/** `?user=ID` (a link to a person's reads): that person chosen, if the caller may look them up. */
function openLinkedUser() {
  const id = new URLSearchParams(location.search).get("user");
  if (id && state.users.has(Number(id))) $("#filter-user").value = id;
  keepInAddress();
}

function refuse() {
  $("#notice").textContent = t.notForYou;
  $("#notice").hidden = false;
  $("#audit-section").hidden = true;
}

async function start() {
  const me = await openPage({ lang, t, fail: (error) => say(t.failed + error.message, true) });
  if (!me) return;
  state.me = me;
  $("#who").textContent = `${me.display_name || me.username} · ${roleName(me.role)}`;
  $("#to-accounts").hidden = me.role !== "community_admin";
  $("#to-register").hidden = me.role === "worker";
  $("#to-reports").hidden = me.role === "worker";
  if (!READERS.includes(me.role)) return refuse();
  $("#audit-section").hidden = false;
  await loadUsers();
  await openLinked();
  openLinkedUser(); // after the household: the address is written anew from both
  await loadEntries();
  document.body.dataset.ready = "1";
}

$("#filter-address").placeholder = t.addressPlaceholder;
let typing = null;
$("#filter-address").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(findAddress, 300);
});
for (const id of ["#filter-user", "#filter-action", "#filter-since", "#filter-until"]) $(id).addEventListener("change", reload);
$("#filter-user").addEventListener("change", keepInAddress);
for (const radio of document.querySelectorAll("input[name=view]")) radio.addEventListener("change", reload);
$("#prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); loadEntries(); });
$("#next").addEventListener("click", () => {
  if (!state.cursors[state.page]) return;
  state.page += 1;
  loadEntries();
});

bootPage({ lang, t, start });
