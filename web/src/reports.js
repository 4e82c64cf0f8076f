// The weekly coverage report's page (/reports): the community office, the grid leaders and the
// district's viewers read a week's report (GET /api/v1/reports/coverage), download it as PDF,
// XLSX or CSV, and find the stored Monday reports (GET /api/v1/reports). The API decides who
// reads what: a worker is refused (403) and told so; a viewer chooses district, street or
// community, the others read their own community (a leader: their grids).
import {
  ApiError, CARE_TAGS, api, apiBlob, apiPage, beijingTime, escapeHtml, getToken, isoWeek, otherLangHref, pickLang, saveBlob,
  shiftWeek, translate,
} from "./common.js";
import { bootPage } from "./password.js";
import { recurringSection } from "./recurring.js";
import { taskDetail } from "./task_detail.js";
import { keepFresh, tokenClaims } from "./session.js";

const TEXT = {
  zh: {
    title: "走访覆盖周报", username: "用户名", password: "密码", signIn: "登录", signOut: "退出", other: "English",
    badLogin: "用户名或密码错误", signinFailed: "登录失败：", toMap: "网格地图", toAccounts: "账号管理", toRegister: "住户登记册", toTasks: "工单台账",
    weekTasks: "这一周登记的工单明细 →",
    prevWeek: "‹ 上一周", nextWeek: "下一周 ›", chooseWeek: "周次", scope: "范围", district: "全区", street: "街道", community: "社区",
    weekLabel: (week, from, to) => `${week}（${from}–${to}）`, day: (m, d) => `${m}月${d}日`,
    loading: "正在读取周报…", partial: "本周尚未结束：数字截至目前。",
    coverage: "覆盖率", visited: "已走访 / 户数", visitedShort: "已走访", mustVisit: "五必访 已访 / 应访",
    mustVisitGroups: "五必访 各类人群", group: "人群", doneDue: "已访 / 应访", rate: "完成率",
    mustVisitNote: "一户有多个标签时，在每个标签下各计一次，上方合计亦然。",
    notVisited: "两周以上未走访", responseRate: "响应率", resolutionRate: "解决率", satisfactionRate: "满意率",
    hotlineResponseRate: "12345 响应率", hotlineResolutionRate: "12345 解决率", hotlineSatisfactionRate: "12345 满意率",
    download: "下载：", downloading: "正在下载…", gridsWorstFirst: "各网格（覆盖率由低到高）",
    grid: "网格", households: "户数", tasksOverdue: "超期工单", noGrids: "本周该范围内没有网格。",
    needList: "需求清单 待办", problemList: "问题清单 待办",
    listWeek: (raised, done) => `本周新增 ${raised}，办结 ${done}`, listRaised: "本周新增明细 →",
    listsOpen: "需求 / 问题 待办", listsDone: (need, problem) => `办结 ${need} / ${problem}`,
    yourGrids: "（我负责的网格）",
    trendTitle: (n) => `走访覆盖率趋势（近 ${n} 周）`, trendAsTable: "以表格查看",
    workersTitle: "网格员走访情况", workersHow: "默认走访户数最少的在前；点击列标题可按该列排序，再点一次反向。",
    noWorkers: "本周该范围内没有网格员。", worker: "网格员", visits: "走访次数", householdsVisited: "走访户数",
    aDays: "A岗（窗口）天数", bDays: "B岗（入户）天数",
    trendLabel: (points, week) => `各周覆盖率：${points.join("，")}；所选周次 ${week}`,
    stored: "周一自动生成的周报", storedWhat: "每周一 8:00 为上一周生成，每个社区一份。",
    week: "周次", made: "生成时间", files: "文件", noStored: "还没有自动生成的周报。",
    lateVisits: (n) => `生成后又收到本周走访 ${n} 条（手机离线保存、后来同步），实时周报已计入：`, seeLive: "查看实时周报",
    prevPage: "‹ 上一页", nextPage: "下一页 ›", page: (p, n) => `第 ${p} / ${n} 页`,
    forbidden: "您无权查看周报：周报供网格长、社区管理员和街道/区级查看人员阅读。",
    notFound: "找不到该范围的周报（不存在或不在您的管辖范围内）。",
    invalid: "周次或范围有误。", offline: "网络未连接，无法读取周报。恢复连接后请重试。",
    failed: "无法读取周报。", storedFailed: "无法读取已生成的周报。", downloadFailed: "下载失败。",
    serverSaid: "服务器答复：",
    roles: { worker: "网格员", grid_leader: "网格长", community_admin: "社区管理员", district_viewer: "街道/区级查看" },
  },
  en: {
    title: "Weekly coverage report", username: "Username", password: "Password", signIn: "Sign in",
    signOut: "Sign out", other: "中文", badLogin: "Wrong username or password", signinFailed: "Sign-in failed: ",
    toMap: "Grid map", toAccounts: "Accounts", toRegister: "Resident register", toTasks: "Task ledger",
    weekTasks: "The tasks opened that week, one by one →",
    prevWeek: "‹ Week before", nextWeek: "Week after ›", chooseWeek: "Week", scope: "Area", district: "District", street: "Street",
    community: "Community",
    weekLabel: (week, from, to) => `${week} (${from} – ${to})`, day: (m, d) => `${d}/${m}`,
    loading: "Reading the report…", partial: "This week is under way: the figures so far.",
    coverage: "Coverage", visited: "Visited / households", visitedShort: "Visited",
    mustVisit: "Must-visit done / due", mustVisitGroups: "Must-visit groups", group: "Group", doneDue: "Done / due",
    rate: "Rate", mustVisitNote: "A household with several tags counts under each, in the total above too.",
    notVisited: "Not visited 2+ weeks", responseRate: "Response rate",
    resolutionRate: "Resolution rate", satisfactionRate: "Satisfaction rate", hotlineResponseRate: "12345 response rate",
    hotlineResolutionRate: "12345 resolution rate", hotlineSatisfactionRate: "12345 satisfaction rate",
    download: "Download: ", downloading: "Downloading…", gridsWorstFirst: "Grids (least covered first)",
    grid: "Grid", households: "Households", tasksOverdue: "Overdue tasks", noGrids: "No grids in this area that week.",
    needList: "Need list: open", problemList: "Problem list: open",
    listWeek: (raised, done) => `this week: ${raised} raised, ${done} done`, listRaised: "Raised this week →",
    listsOpen: "Needs / problems open", listsDone: (need, problem) => `done ${need} / ${problem}`,
    yourGrids: " (your grids)",
    trendTitle: (n) => `Coverage trend (last ${n} weeks)`, trendAsTable: "Show as a table",
    workersTitle: "Workers", workersHow: "Fewest households visited first; click a column heading to sort by it, again to reverse.",
    noWorkers: "No workers in this area that week.", worker: "Worker", visits: "Visits",
    householdsVisited: "Households visited", aDays: "A-post days (hall)", bDays: "B-post days (doors)",
    trendLabel: (points, week) => `Coverage by week: ${points.join(", ")}; chosen week ${week}`,
    stored: "Monday reports", storedWhat: "Made every Monday 08:00 for the week before, one per community.",
    week: "Week", made: "Made", files: "Files", noStored: "No Monday reports yet.",
    lateVisits: (n) => `${n} visits of the week arrived after it was made (kept offline on a phone, synced later); the live report counts them: `, seeLive: "see the live report",
    prevPage: "‹ Previous", nextPage: "Next ›", page: (p, n) => `Page ${p} of ${n}`,
    forbidden: "Reports are not yours to read: they are for grid leaders, community admins and district viewers.",
    notFound: "No report for that area (it does not exist or is outside your reach).",
    invalid: "The week or the area is not right.", offline: "Offline: the report cannot be read. Try again once online.",
    failed: "The report could not be read.", storedFailed: "The Monday reports could not be read.",
    downloadFailed: "The download failed.", serverSaid: "The server said: ",
    roles: { worker: "worker", grid_leader: "grid leader", community_admin: "community admin", district_viewer: "district viewer" },
  },
};
const lang = pickLang();
const t = TEXT[lang];
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
document.title = `${t.title} · gridwork`;
translate(document, t);

const $ = (id) => document.getElementById(id);
const beijing = (when) => beijingTime(when, lang);
// A task number of what recurs opens the task's page (read-only for whoever may take no step).
const detail = taskDetail({ lang, dialog: $("task-detail"), localTime: beijing });
const recurring = recurringSection($("recurring-section"), lang, { openTask: (id) => detail.open(id) });
const FORMATS = ["pdf", "xlsx", "csv"];
const PAGE_SIZE = 10;

const state = {
  week: shiftWeek(isoWeek(), -1), // the week the Monday report covers
  scope: "", // "level:code"; "" is the caller's own unit (a viewer's district, others' community)
  report: null,
  loads: 0,
  // The workers' order: a column and a direction (1 ascending: fewest first, names A-Z).
  workerSort: { key: "households", dir: 1 },
  storedPage: 1,
};

const pct = (value) => (value === null || value === undefined ? "—" : `${Number(value).toFixed(1)}%`);

/** The Monday (as a UTC date) of an ISO week "2026-W48". */
function monday(week) {
  const [year, number] = week.split("-W").map(Number);
  const jan4 = new Date(Date.UTC(year, 0, 4));
  return new Date(jan4.getTime() - ((jan4.getUTCDay() || 7) - 1) * 86400000 + (number - 1) * 7 * 86400000);
}

function weekLabel(week) {
  const from = monday(week);
  const to = new Date(from.getTime() + 6 * 86400000);
  const day = (d) => t.day(d.getUTCMonth() + 1, d.getUTCDate());
  return t.weekLabel(week, day(from), day(to));
}

/** A file name without the characters Windows refuses. */
const safe = (text) => String(text || "").replace(/[\\/:*?"<>|\u0000-\u001f]/g, "_");
const fileName = (week, name, fmt) => `走访覆盖周报-${week}-${safe(name)}.${fmt}`;

// --- saying what went wrong --------------------------------------------------------------------
function why(error, fallback) {
  if (!(error instanceof ApiError)) return t.offline;
  if (error.status === 403) return t.forbidden;
  if (error.status === 404) return t.notFound;
  if (error.status === 422) return t.invalid;
  return fallback;
}

function tell(error, fallback) {
  const notice = $("notice");
  notice.querySelector(".why").textContent = why(error, fallback);
  const detail = error instanceof ApiError ? error.body?.detail || error.message : error.message;
  notice.querySelector(".detail").textContent = detail ? t.serverSaid + detail : "";
  notice.querySelector(".detail").hidden = !detail || !(error instanceof ApiError);
  notice.hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
}

// --- the week's report -------------------------------------------------------------------------
function scopeQuery() {
  if (!state.scope) return "";
  const [level, code] = state.scope.split(":");
  return `&${level}=${encodeURIComponent(code)}`;
}

function showWeek() {
  const current = isoWeek();
  $("week").value = state.week;
  $("week").max = current;
  $("week-next").disabled = state.week >= current;
}

async function loadReport() {
  const load = ++state.loads;
  showWeek();
  $("status").textContent = t.loading;
  let report;
  try {
    report = await api(`/api/v1/reports/coverage?week=${encodeURIComponent(state.week)}${scopeQuery()}&format=json`);
  } catch (error) {
    if (load !== state.loads) return;
    $("status").textContent = "";
    if (error.status === 401) return;
    $("report").hidden = true;
    $("chooser").hidden = error.status === 403; // no week or area is theirs to read
    tell(error, t.failed);
    return;
  }
  if (load !== state.loads) return; // a later week or area was asked for meanwhile
  $("status").textContent = "";
  clearNotice();
  state.report = report;
  if (!state.scope && report.level === "district") offerAreas(report);
  showReport(report);
}

// Each must-visit group (五必访) of the report's totals, in its order: which group is behind, which
// the sum above hides (it counts a household with two tags under both).
function showMustVisitGroups(must) {
  $("must-visit-groups").querySelector("tbody").innerHTML = must.map((m) => {
    const low = m.rate !== null && m.rate < 50 ? "low" : "";
    return `<tr data-tag="${escapeHtml(m.tag)}"><td>${escapeHtml(CARE_TAGS[m.tag]?.[lang === "zh" ? 0 : 1] || m.tag)}</td>
      <td>${m.done} / ${m.due}</td><td class="${low}">${pct(m.rate)}</td></tr>`;
  }).join("");
  $("must-visit-section").hidden = !must.length;
}

/** The ledger's address (/tasks) of the report's week: the tasks behind its figures one by one
 * (opened that week), of the community or street read; a district's: every task of the
 * viewer's district. `more`: other filters (`list`). */
function tasksOf(report, more = {}) {
  const q = new URLSearchParams({ week: report.week, ...more });
  if (["community", "grids"].includes(report.level)) q.set("community", report.code);
  if (report.level === "street") q.set("street", report.code);
  return q;
}

// A grid's lists as one table cell (a column each made the English table too wide for a
// tablet): needs / problems open, and beneath them done this week; "—" for a report stored
// before the lists.
function listsCell(lists) {
  const [need, problem] = [lists?.need, lists?.problem];
  const text = need && problem ? `${need.open} / ${problem.open}` : "—";
  const done = need && problem ? `<small class="muted">${escapeHtml(t.listsDone(need.done, problem.done))}</small>` : "";
  return `<td class="lists" data-label="${escapeHtml(t.listsOpen)}"><span>${escapeHtml(text)}</span>${done}</td>`;
}

function showReport(report) {
  const totals = report.totals || {};
  const tasks = totals.tasks || {};
  const must = totals.must_visit || [];
  const set = (name, text) => { document.querySelector(`[data-figure=${name}]`).textContent = text; };
  set("coverage", pct(totals.coverage));
  set("visited", `${totals.visited ?? 0} / ${totals.households ?? 0}`);
  set("must-visit", `${must.reduce((n, m) => n + m.done, 0)} / ${must.reduce((n, m) => n + m.due, 0)}`);
  showMustVisitGroups(must);
  set("not-visited", String(totals.not_visited_2w ?? 0));
  set("response-rate", pct(tasks.response_rate));
  set("resolution-rate", pct(tasks.resolution_rate));
  set("satisfaction-rate", pct(tasks.satisfaction_rate));
  // The 12345 tickets' own three rates, what the community is judged by (the rates above count
  // the window's requests and the visits' follow-ups too).
  const hotline = tasks.hotline || {};
  set("hotline-response-rate", pct(hotline.response_rate));
  set("hotline-resolution-rate", pct(hotline.resolution_rate));
  set("hotline-satisfaction-rate", pct(hotline.satisfaction_rate));
  // The need and problem lists visits produce (需求清单 / 问题清单): open as the week closed, and
  // raised and done in it. A report stored before the lists has none: a dash.
  const lists = totals.lists;
  for (const kind of ["need", "problem"]) {
    const list = lists?.[kind];
    set(`${kind}-list`, list ? String(list.open) : "—");
    set(`${kind}-list-week`, list ? t.listWeek(list.raised, list.done) : "");
    // Those raised in the week, one by one: the ledger of the list (/tasks?list=).
    const link = document.querySelector(`[data-list-link="${kind}"]`);
    link.href = `/tasks?${tasksOf(report, { list: kind })}`;
    link.hidden = !list?.raised;
  }
  $("scope-name").textContent = report.name + (report.level === "grids" ? t.yourGrids : "");
  $("week-label").textContent = weekLabel(report.week);
  $("partial").hidden = report.week !== isoWeek();

  // The worst covered first: the office reads where to send people; no households last.
  const grids = [...(report.grids || [])].sort((a, b) => (a.coverage === null) - (b.coverage === null)
    || (a.coverage ?? 0) - (b.coverage ?? 0) || a.code.localeCompare(b.code));
  $("grids").querySelector("tbody").innerHTML = grids.map((g) => {
    const gm = g.must_visit || [];
    const cell = (key, text, cls = "") => `<td class="${cls}" data-label="${escapeHtml(t[key])}">${escapeHtml(text)}</td>`;
    return `<tr data-code="${escapeHtml(g.code)}">
      <td class="name"><span>${escapeHtml(g.name)}</span> <span class="muted code">${escapeHtml(g.code)}</span></td>
      ${cell("households", g.households)}${cell("visitedShort", g.visited)}
      ${cell("coverage", pct(g.coverage), g.coverage !== null && g.coverage < 50 ? "low" : "")}
      ${cell("notVisited", g.not_visited_2w)}
      ${cell("mustVisit", `${gm.reduce((n, m) => n + m.done, 0)} / ${gm.reduce((n, m) => n + m.due, 0)}`)}
      ${cell("tasksOverdue", g.tasks?.overdue ?? 0)}
      ${listsCell(g.lists)}</tr>`;
  }).join("");
  $("grids").hidden = !grids.length;
  $("no-grids").hidden = Boolean(grids.length);
  showTrend(report.trend || [], report.week);
  showWorkers();
  // What keeps coming back is read of a community (a leader's: their grids in it).
  recurring.show({
    community: ["community", "grids"].includes(report.level) ? report.code : null,
    gridNames: new Map((report.grids || []).map((g) => [g.code, g.name])),
  });
  $("week-tasks").href = `/tasks?${tasksOf(report)}`;
  $("report").hidden = false;
  const figures = $("figures");
  figures.dataset.scope = state.scope || "own";
  figures.dataset.week = report.week;
}

// The trend's bars: a slot per week, the bar's height its coverage (0-100 %), the value above
// it and the week beneath, in the SVG's own units (the CSS scales the whole to the page).
const SLOT = 52;
const BAR = 34;
const TOP = 20; // room for the value above a full bar
const PLOT = 120;
const BOTTOM = 22; // the week's label

/** The weeks' coverage as bars (no library) and as a table; the chosen week marked in both. */
function showTrend(trend, week) {
  $("trend-title").textContent = t.trendTitle(trend.length);
  const chart = $("trend-chart");
  chart.setAttribute("viewBox", `0 0 ${trend.length * SLOT} ${TOP + PLOT + BOTTOM}`);
  chart.setAttribute("aria-label", t.trendLabel(trend.map((p) => `${p.week} ${pct(p.coverage)}`), week));
  chart.innerHTML = trend.map((p, i) => {
    const height = Math.round((Math.min(Math.max(p.coverage ?? 0, 0), 100) / 100) * PLOT * 10) / 10;
    const x = i * SLOT + (SLOT - BAR) / 2;
    const middle = i * SLOT + SLOT / 2;
    const short = p.week.split("-")[1];
    return `<g data-week="${escapeHtml(p.week)}" class="${p.week === week ? "selected" : ""}">
      <title>${escapeHtml(`${weekLabel(p.week)}: ${pct(p.coverage)} (${p.visited} / ${p.households})`)}</title>
      <rect class="track" x="${x}" y="${TOP}" width="${BAR}" height="${PLOT}"></rect>
      <rect class="bar" x="${x}" y="${TOP + PLOT - height}" width="${BAR}" height="${height}"></rect>
      <text class="value" x="${middle}" y="${TOP + PLOT - height - 5}">${escapeHtml(pct(p.coverage))}</text>
      <text class="week" x="${middle}" y="${TOP + PLOT + 16}">${escapeHtml(short)}</text></g>`;
  }).join("");
  $("trend-table").querySelector("tbody").innerHTML = trend.map((p) => {
    const cell = (key, text) => `<td data-label="${escapeHtml(t[key])}">${escapeHtml(text)}</td>`;
    const chosen = p.week === week;
    return `<tr data-week="${escapeHtml(p.week)}"${chosen ? ' class="selected" aria-current="true"' : ""}>
      ${cell("week", p.week)}${cell("households", p.households)}${cell("visitedShort", p.visited)}${cell("coverage", pct(p.coverage))}</tr>`;
  }).join("");
  $("trend-section").hidden = !trend.length;
}

const collator = new Intl.Collator(lang === "zh" ? "zh-CN" : "en");
const workerName = (w) => w.name || w.username;

/** The chosen column first, then the worst (fewest households found, fewest visits), by name. */
function compareWorkers(a, b) {
  const { key, dir } = state.workerSort;
  const first = key === "name" ? collator.compare(workerName(a), workerName(b)) : a[key] - b[key];
  return first * dir || a.households - b.households || a.visits - b.visits
    || collator.compare(workerName(a), workerName(b)) || a.id - b.id;
}

/** The report's workers as a table in the order chosen (worst first until a heading is clicked). */
function showWorkers() {
  const workers = [...(state.report?.workers || [])].sort(compareWorkers);
  $("workers").querySelector("tbody").innerHTML = workers.map((w) => {
    const cell = (key, text) => `<td data-label="${escapeHtml(t[key])}">${escapeHtml(text)}</td>`;
    return `<tr data-id="${escapeHtml(w.id)}">
      <td class="name"><span>${escapeHtml(workerName(w))}</span> <span class="muted code">${escapeHtml(w.username)}</span></td>
      ${cell("visits", w.visits)}${cell("householdsVisited", w.households)}${cell("aDays", w.a_days)}${cell("bDays", w.b_days)}</tr>`;
  }).join("");
  for (const th of $("workers").querySelectorAll("th[data-sort]")) {
    const sorted = th.dataset.sort === state.workerSort.key;
    th.setAttribute("aria-sort", sorted ? (state.workerSort.dir > 0 ? "ascending" : "descending") : "none");
  }
  $("workers").hidden = !workers.length;
  $("no-workers").hidden = Boolean(workers.length);
}

$("workers").querySelector("thead").addEventListener("click", (e) => {
  const th = e.target.closest("th[data-sort]");
  if (!th) return;
  const { key, dir } = state.workerSort;
  state.workerSort = { key: th.dataset.sort, dir: th.dataset.sort === key ? -dir : 1 };
  showWorkers();
});

/** A district viewer's areas: the district, its streets and communities, named as its report
 * names them (each community with the street it lies in); a code where a name is missing. */
function offerAreas(report) {
  const select = $("scope");
  if (select.options.length) return;
  const communities = report.communities || [];
  const streets = new Map();
  for (const c of communities) {
    const code = c.street_code || c.code.slice(0, 9);
    if (!streets.has(code)) streets.set(code, c.street_name || code);
  }
  const option = (value, text) => `<option value="${escapeHtml(value)}">${escapeHtml(text)}</option>`;
  select.innerHTML = [
    option(`district:${report.code}`, `${t.district} ${report.name}`),
    ...[...streets].map(([code, name]) => option(`street:${code}`, `${t.street} ${name}`)),
    ...communities.map((c) => option(`community:${c.code}`, `${t.community} ${c.name || c.code}`)),
  ].join("");
  state.scope = `district:${report.code}`;
  $("scope-choice").hidden = false;
}

// --- downloads ---------------------------------------------------------------------------------
async function download(button, path, name, status) {
  button.disabled = true;
  status.textContent = t.downloading;
  try {
    saveBlob(await apiBlob(path), name);
    status.textContent = "";
  } catch (error) {
    status.textContent = "";
    tell(error, t.downloadFailed);
  } finally {
    button.disabled = false;
  }
}

for (const fmt of FORMATS) {
  $(`download-${fmt}`).addEventListener("click", (e) => {
    const report = state.report;
    if (!report) return;
    const path = `/api/v1/reports/coverage?week=${encodeURIComponent(report.week)}${scopeQuery()}&format=${fmt}`;
    download(e.currentTarget, path, fileName(report.week, report.name, fmt), $("status"));
  });
}

// --- the stored Monday reports -----------------------------------------------------------------
async function loadStored() {
  const status = $("stored-status");
  status.textContent = t.loading;
  let items;
  let pagination;
  try {
    ({ items, pagination } = await apiPage("/api/v1/reports", { page: state.storedPage, pageSize: PAGE_SIZE }));
  } catch (error) {
    status.textContent = "";
    if (error.status === 401) return;
    if (error.status === 403) return; // said above, with the week's report
    $("stored-section").hidden = false;
    status.textContent = `${t.storedFailed} ${error.body?.detail || error.message}`;
    return;
  }
  status.textContent = items.length ? "" : t.noStored;
  $("stored").querySelector("tbody").innerHTML = items.map((r) => {
    const files = FORMATS.filter((f) => (r.files || []).some((file) => file.format === f))
      .map((f) => `<button type="button" data-format="${f}">${f.toUpperCase()}</button>`).join(" ");
    return `<tr data-id="${escapeHtml(r.id)}" data-week="${escapeHtml(r.week)}" data-name="${escapeHtml(r.name)}" data-code="${escapeHtml(r.code)}">
      <td class="week" data-label="${escapeHtml(t.week)}">${escapeHtml(r.week)}</td>
      <td data-label="${escapeHtml(t.community)}">${escapeHtml(r.name)}</td>
      <td data-label="${escapeHtml(t.coverage)}">${escapeHtml(pct(r.coverage))} <span class="muted">${escapeHtml(`${r.visited} / ${r.households}`)}</span>${r.late_visits
        ? `<div class="late-visits muted">${escapeHtml(t.lateVisits(r.late_visits))}<button type="button" class="link" data-live="${escapeHtml(r.week)}">${escapeHtml(t.seeLive)}</button></div>` : ""}</td>
      <td data-label="${escapeHtml(t.made)}">${escapeHtml(beijing(r.created_at))}</td>
      <td class="files" data-label="${escapeHtml(t.files)}">${files}</td></tr>`;
  }).join("");
  $("stored").hidden = !items.length;
  const pages = pagination?.total_pages || 1;
  $("stored-prev").hidden = state.storedPage <= 1;
  $("stored-next").hidden = state.storedPage >= pages;
  $("stored-page").textContent = pages > 1 ? t.page(state.storedPage, pages) : "";
  $("stored-section").hidden = false;
}

$("stored").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-format]");
  const live = e.target.closest("button[data-live]");
  if (live) {
    // The week's report as it stands now, of the stored report's community (a district viewer
    // chooses among areas: the one chosen may be another), above: brought into view.
    const area = `community:${live.closest("tr").dataset.code}`;
    if ([...$("scope").options].some((o) => o.value === area)) {
      state.scope = area;
      $("scope").value = area;
    }
    goToWeek(live.dataset.live);
    $("week").scrollIntoView({ block: "start" });
    return;
  }
  if (!button) return;
  const row = button.closest("tr");
  const fmt = button.dataset.format;
  download(button, `/api/v1/reports/${encodeURIComponent(row.dataset.id)}/files/${fmt}`,
    fileName(row.dataset.week, row.dataset.name, fmt), $("stored-status"));
});
$("stored-prev").addEventListener("click", () => { state.storedPage -= 1; loadStored(); });
$("stored-next").addEventListener("click", () => { state.storedPage += 1; loadStored(); });

// --- choosing the week and the area ------------------------------------------------------------
function goToWeek(week) {
  if (!/^\d{4}-W\d{2}$/.test(week) || week > isoWeek()) return showWeek();
  state.week = week;
  loadReport();
}
$("week-prev").addEventListener("click", () => goToWeek(shiftWeek(state.week, -1)));
$("week-next").addEventListener("click", () => goToWeek(shiftWeek(state.week, 1)));
$("week").addEventListener("change", (e) => goToWeek(e.target.value));
$("scope").addEventListener("change", (e) => { state.scope = e.target.value; loadReport(); });

// --- signing in --------------------------------------------------------------------------------
async function start() {
  $("toolbar").hidden = false;
  $("main").hidden = false;
  const langLink = $("lang");
  langLink.textContent = t.other;
  langLink.href = otherLangHref(lang);
  keepFresh();
  const role = tokenClaims(getToken()).role;
  $("to-accounts").hidden = !["community_admin", "grid_leader"].includes(role);
  api("/api/v1/auth/me").then((me) => {
    $("who").textContent = `${me.display_name || me.username} · ${t.roles[me.role] || me.role}`;
  }).catch(() => {});
  await Promise.all([loadReport(), loadStored()]);
  document.body.dataset.ready = "1";
}

bootPage({ lang, t, start });
