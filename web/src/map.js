// The grid leader's map: vector tiles of grids, households, visits and tasks, with popups.
import {
  TASK_TEXT, api, apiPage, apiPages, beijingTime, config, escapeHtml, getToken, isoWeek, otherLangHref, pickLang, shiftWeek, signOut, translate,
} from "./common.js";
import { wireSignIn } from "./password.js";
import { evidenceShort } from "./reasons.js";
import { taskDetail } from "./task_detail.js";
import { SessionEnded, keepFresh, refreshAccess, tokenClaims } from "./session.js";

const TEXT = {
  zh: {
    title: "网格地图", legend: "图例", noHouseholds: "无住户", username: "用户名", password: "密码", signIn: "登录", signOut: "退出",
    week: "周", other: "English", prevWeek: "上一周", nextWeek: "下一周",
    futureWeek: "未来的周还没有走访记录，已显示本周。",
    // The week's words: "this week" only for the week under way (a past week is named).
    coverage: (w) => (w === isoWeek() ? "本周走访覆盖率" : `${w} 走访覆盖率`), households: "住户", visited: "已走访",
    grid: "网格", legendGrids: "网格覆盖率", legendHouseholds: "住户走访",
    visitedWeek: (w) => (w === isoWeek() ? "本周已访" : "该周已访"),
    due: "待访", overdue: "逾期未访",
    // The ring is `must_visit_due`: a must-visit household not visited in the week shown.
    mustVisit: (w) => (w === isoWeek() ? "必访对象（本周未访）" : "必访对象（该周未访）"), tasks: "任务", taskOpen: "进行中",
    taskOverdue: "已超期", openTask: "打开任务", taskBeside: "放大后，住户处的任务标在该户的右上方", status: "状态", dueAt: "期限", urgency: "紧急程度", history: "走访记录",
    none: "暂无记录", daysSince: "距上次走访(天)", never: "从未", lastVisit: "上次走访",
    lastAttempt: "上次上门未遇",
    badLogin: "用户名或密码错误", signinFailed: "登录失败：", accounts: "账号管理", reports: "周报", tasks: "工单台账", register: "住户登记册",
    sessionEnded: "登录已失效，请重新登录。",
    fitFailed: "无法读取您的网格范围，地图未缩放到网格：", noGrids: "您名下没有网格。",
    tilesFailed: "地图图层读取失败：", unreachable: "无法连接服务器，请检查网络后再试",
    renewFailed: "服务器暂时无法续期登录，请稍后再试",
    // A refusal said by its status; the server's words (English) follow in brackets.
    refused: (status) => (status >= 500 ? "服务器暂时不可用，请稍后再试。"
      : { 403: "这个账号无权查看地图。", 404: "服务器上找不到地图数据，页面可能需要更新。",
        422: "所选的周无效，请在“周”中重新选择。", 429: "请求过于频繁，请稍后再试。" }[status]
        || "服务器拒绝了这个请求。"),
    serverSaid: (said, detail) => (detail ? `${said}（服务器：${detail}）` : said),
    recordGone: "找不到这条记录，它可能已不在您的网格中。",
    weekWithoutGrids: (w) => `所选的周（${w}）没有网格：网格是在这之后才划定的。`,
    here: (n) => `此处共 ${n} 项`, back: "← 返回列表", task: "任务", entrance: "楼门",
    entranceCount: (n) => `共 ${n} 户`, worstStatus: "最差状态", mostDays: "最久未走访(天)",
    mustVisitDue: "有必访对象本周未访", zoomIn: "放大地图",
    entranceHint: "此点代表一个楼门的所有住户：点各户的“走访记录”查看，或放大地图逐户查看。",
    loading: "正在读取…", retry: "重试", older: "更早的走访记录", close: "关闭", zoomInButton: "放大", zoomOutButton: "缩小",
    mapLabel: "网格地图：方向键移动，+ / − 缩放，回车查看十字准星处的住户、任务或网格", backEntrance: "← 返回楼门",
    urgencies: { danger: "危急", utility: "水电气热", general: "一般", complex: "疑难复杂" },
    statuses: TASK_TEXT.zh.statuses,
    outcomes: { met: "见到住户", nobody_home: "无人在家", refused: "拒绝", moved_out: "已搬离", vacant: "空置" },
    grades: { ok: "可信", doubtful: "存疑", suspect: "可疑" },
    showVisits: "走访定位", legendVisits: "走访定位（放大后显示）", visit: "走访", grade: "定位可信度",
    worker: "走访人", outcome: "结果", toHousehold: "离住户", metres: (m) => `${m} 米`, household: "住户",
    reason: (code) => evidenceShort(code, "zh"),
  },
  en: {
    title: "Grid map", legend: "Legend", noHouseholds: "no households", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out",
    week: "Week", other: "中文", prevWeek: "Previous week", nextWeek: "Next week",
    futureWeek: "A week to come has no visits yet; this week is shown.",
    coverage: (w) => (w === isoWeek() ? "Coverage this week" : `Coverage in ${w}`), households: "Households",
    visited: "Visited", grid: "Grid", legendGrids: "Grid coverage", legendHouseholds: "Household visits",
    visitedWeek: (w) => (w === isoWeek() ? "Visited this week" : "Visited that week"), due: "Due", overdue: "Overdue",
    mustVisit: (w) => (w === isoWeek() ? "Must-visit, not visited this week" : "Must-visit, not visited that week"),
    tasks: "Tasks", taskOpen: "Open", taskOverdue: "Overdue", openTask: "Open the task", taskBeside: "Zoomed in, a task at a household is drawn up and right of it", status: "Status", dueAt: "Deadline",
    urgency: "Urgency", history: "Visit history", none: "No visits yet", daysSince: "Days since last visit",
    never: "never", lastVisit: "Last visit", badLogin: "Wrong username or password",
    sessionEnded: "Your sign-in has ended: sign in again.", signinFailed: "Sign-in failed: ", accounts: "Accounts", reports: "Weekly report", tasks: "Task ledger", register: "Resident register",
    lastAttempt: "Last attempt, nobody home",
    fitFailed: "Could not read your grids; the map is not zoomed to them: ", noGrids: "You have no grids.",
    tilesFailed: "The map's layers could not be read: ",
    unreachable: "the server cannot be reached; check the network and try again",
    renewFailed: "the server could not renew your sign-in; try again later",
    refused: (status) => `HTTP ${status}`, serverSaid: (said, detail) => detail || said,
    recordGone: "Not found: it may no longer be in your grids.",
    weekWithoutGrids: (w) => `No grids in ${w}: they were drawn after it.`,
    here: (n) => `${n} items here`, back: "← Back to the list", task: "Task", entrance: "Entrance",
    entranceCount: (n) => `${n} households`, worstStatus: "Worst status", mostDays: "Most days since a visit",
    mustVisitDue: "A must-visit household is not visited this week", zoomIn: "Zoom in",
    entranceHint: "This point stands for every household of a stair entrance: open each one's visit history below, or zoom in.",
    loading: "Loading…", retry: "Retry", older: "Older visits", close: "Close", zoomInButton: "Zoom in", zoomOutButton: "Zoom out",
    mapLabel: "Grid map: arrow keys move it, + and − zoom, Enter opens what is under the crosshair", backEntrance: "← Back to the entrance",
    urgencies: { danger: "danger", utility: "utilities", general: "general", complex: "complex" },
    statuses: TASK_TEXT.en.statuses,
    outcomes: { met: "met", nobody_home: "nobody home", refused: "refused", moved_out: "moved out", vacant: "vacant" },
    grades: { ok: "ok", doubtful: "doubtful", suspect: "suspect" },
    showVisits: "Visit positions", legendVisits: "Visit positions (zoomed in)", visit: "Visit",
    grade: "Location evidence", worker: "Worker", outcome: "Outcome", toHousehold: "To the household",
    metres: (m) => `${m} m`, household: "Household", reason: (code) => evidenceShort(code, "en"),
  },
};
const lang = pickLang();
const t = TEXT[lang];
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
document.title = `${t.title} · gridwork`;
translate(document, t);

const NO_HOUSEHOLDS = "#bdbdbd";
const COLORS = { visited: "#2e7d32", due: "#f9a825", overdue: "#c62828", task: "#6a1b9a" };
// A visit is drawn where the worker stood, as a ring coloured by its location evidence: a leader
// sees which visits were recorded away from the door (a household is a filled dot).
const GRADE_COLORS = { ok: "#1565c0", doubtful: "#ef6c00", suspect: "#d50000" };
// The visits layer is drawn only when asked for (remembered on this browser): every visits tile
// is a read of the visits it holds, in the audit log, and the rings crowd the households' dots.
const VISITS_KEY = "gridwork.map.visits";
let showVisits = localStorage.getItem(VISITS_KEY) === "1";
const LAYERS = ["grids", "households", "visits", "tasks"];
// Where households are drawn (z15 on, the layer's minzoom), a task stands up and right of its
// place, clear of the dot there (at most 6 px; the task 7 px and its 2 px rim): drawn on the
// same point, a task at a household hid the household's dot, its colour and must-visit ring.
const TASK_BESIDE = [12, -12];
const TASK_BESIDE_FROM = 15;
const REFRESH_MS = 5 * 60_000; // the layers asked for again while the map is watched
// The week is kept in the query string: a reload (or a shared link) shows the same week.
let week = new URLSearchParams(location.search).get("week") || isoWeek();

function tileUrl(layer) {
  return `${location.origin}/api/v1/tiles/${layer}/{z}/{x}/{y}.mvt?week=${week}`;
}

function style() {
  const sources = {};
  for (const layer of LAYERS) {
    sources[layer] = { type: "vector", tiles: [tileUrl(layer)], minzoom: 10, maxzoom: 17 };
  }
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }];
  if (config.basemapUrl) {
    sources.basemap = { type: "raster", tiles: [config.basemapUrl], tileSize: 256 };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  layers.push(
    {
      id: "grids-fill", type: "fill", source: "grids", "source-layer": "grids",
      paint: {
        // A grid without households has no coverage (as in the report): grey, not red.
        "fill-color": ["case", ["has", "coverage"], ["interpolate", ["linear"], ["get", "coverage"],
          0, "#d73027", 0.5, "#fee08b", 0.8, "#a6d96a", 1, "#1a9850"], NO_HOUSEHOLDS],
        "fill-opacity": 0.45,
      },
    },
    { id: "grids-line", type: "line", source: "grids", "source-layer": "grids",
      paint: { "line-color": "#37474f", "line-width": 1.5 } },
    {
      id: "households", type: "circle", source: "households", "source-layer": "households", minzoom: 15,
      paint: {
        "circle-radius": ["interpolate", ["linear"], ["zoom"], 15, 3, 17, 6],
        "circle-color": ["match", ["get", "status"], "visited", COLORS.visited, "due", COLORS.due, COLORS.overdue],
        "circle-stroke-color": "#000", "circle-stroke-width": ["case", ["get", "must_visit_due"], 1.5, 0],
      },
    },
    {
      id: "visits", type: "circle", source: "visits", "source-layer": "visits", minzoom: 15,
      layout: { visibility: showVisits ? "visible" : "none" },
      paint: {
        // A ring around the household's dot (bigger than it, no fill): a visit at the door
        // leaves the household's status in sight.
        "circle-radius": ["interpolate", ["linear"], ["zoom"], 15, 5, 17, 9],
        "circle-opacity": 0, "circle-stroke-width": 2.5,
        "circle-stroke-color": ["match", ["get", "grade"], "ok", GRADE_COLORS.ok, "doubtful", GRADE_COLORS.doubtful, GRADE_COLORS.suspect],
      },
    },
    // A task at a household stands beside its dot ("tasks"); one elsewhere, a pothole in the
    // street, where it is ("tasks-away"): circle-translate is one for a whole layer.
    ...[["tasks", true], ["tasks-away", false]].map(([id, atHousehold]) => ({
      id, type: "circle", source: "tasks", "source-layer": "tasks",
      filter: ["==", ["to-boolean", ["get", "at_household"]], atHousehold],
      paint: {
        "circle-radius": 7, "circle-color": ["case", ["get", "overdue"], COLORS.overdue, COLORS.task],
        "circle-stroke-color": "#fff", "circle-stroke-width": 2,
        ...(atHousehold
          ? { "circle-translate": ["step", ["zoom"], ["literal", [0, 0]], TASK_BESIDE_FROM, ["literal", TASK_BESIDE]] }
          : {}),
      },
    })),
  );
  return { version: 8, sources, layers };
}

// A phone's screen (or a phone on its side): the legend stands folded, a "图例" button that
// opens it. Open, it is 330 px tall: half of a phone's map, over the leader's grids.
const SMALL_SCREEN = "(max-width: 640px), (max-height: 500px)";

function legend() {
  const el = document.getElementById("legend");
  const open = el.hidden ? !matchMedia(SMALL_SCREEN).matches : el.open; // kept when drawn again
  // Colours are set through the DOM: the page's CSP refuses inline style attributes.
  const swatch = (color, dot = false) => `<i class="${dot ? "dot" : ""}" data-color="${color}"></i>`;
  el.innerHTML = `<summary>${t.legend}</summary>
    <h3>${t.legendGrids}</h3>
    <div>${swatch("#d73027")}0%</div><div>${swatch("#fee08b")}50%</div>
    <div>${swatch("#a6d96a")}80%</div><div>${swatch("#1a9850")}100%</div>
    <div>${swatch(NO_HOUSEHOLDS)}${t.noHouseholds}</div>
    <h3>${t.legendHouseholds}</h3>
    <div>${swatch(COLORS.visited, true)}${t.visitedWeek(week)}</div>
    <div>${swatch(COLORS.due, true)}${t.due}</div>
    <div>${swatch(COLORS.overdue, true)}${t.overdue}</div>
    <div><i class="dot must-visit"></i>${t.mustVisit(week)}</div>
    <h3>${t.tasks}</h3>
    <div>${swatch(COLORS.task, true)}${t.taskOpen}</div>
    <div>${swatch(COLORS.overdue, true)}${t.taskOverdue}</div>
    <div class="legend-note">${t.taskBeside}</div>
    <div class="legend-visits"${showVisits ? "" : " hidden"}><h3>${t.legendVisits}</h3>
    ${Object.entries(GRADE_COLORS).map(([grade, color]) => `<div><i class="dot ring" data-ring="${color}"></i>${t.grades[grade]}</div>`).join("")}</div>`;
  for (const i of el.querySelectorAll("i[data-color]")) i.style.background = i.dataset.color;
  for (const i of el.querySelectorAll("i[data-ring]")) i.style.borderColor = i.dataset.ring;
  el.open = open;
  el.hidden = false;
}

function gridPopup(p) {
  return `<div class="popup grid-popup"><h4>${escapeHtml(p.name)} <small>${escapeHtml(p.code)}</small></h4>
    <table>
      <tr><td>${t.households}</td><td class="households">${p.households}</td></tr>
      <tr><td>${t.visited}</td><td class="visited">${p.visited}</td></tr>
      <tr><td>${t.coverage(p.week)}</td><td class="coverage">${p.coverage == null ? `— (${t.noHouseholds})`
        : `${Math.round(p.coverage * 1000) / 10}%`}</td></tr>
    </table></div>`;
}

function taskPopup(p) {
  return `<div class="popup task-popup"><h4>${escapeHtml(p.title)}</h4><table>
    <tr><td>${t.status}</td><td class="status">${escapeHtml(t.statuses[p.status] || p.status)}</td></tr>
    <tr><td>${t.dueAt}</td><td>${escapeHtml(p.due_at)}${p.overdue ? ` <b>(${t.taskOverdue})</b>` : ""}</td></tr>
    <tr><td>${t.urgency}</td><td class="urgency">${escapeHtml(t.urgencies[p.urgency] || p.urgency)}</td></tr></table>
    <button type="button" class="open-task" data-open="${Number(p.id)}">${t.openTask}</button></div>`;
}

/**
 * A visit's popup: when, the outcome and the location evidence the tile carries, then the
 * worker and the distance to the household read from the visit itself (GET /api/v1/visits/{id},
 * scoped and audited as every visit read).
 */
async function visitDetail(p, box, back) {
  const reasons = (p.reasons || "").split(",").filter(Boolean).map((r) => escapeHtml(t.reason(r))).join("、");
  const head = `${back}<h4>${t.visit} ${escapeHtml(p.visited_at)}</h4><table>
    <tr><td>${t.outcome}</td><td class="outcome">${escapeHtml(t.outcomes[p.outcome] || p.outcome)}</td></tr>
    <tr><td>${t.grade}</td><td class="grade">${escapeHtml(t.grades[p.grade] || p.grade)}${reasons ? `: <span class="reasons">${reasons}</span>` : ""}</td></tr>`;
  box.innerHTML = `<div class="popup visit-popup">${head}</table></div>`;
  try {
    const v = await api(`/api/v1/visits/${encodeURIComponent(p.visit_id)}`);
    const metres = v.evidence?.details?.distance_to_household_m;
    const rows = `<tr><td>${t.worker}</td><td class="worker">${escapeHtml(v.worker_name)}</td></tr>
      ${v.household_id ? `<tr><td>${t.household}</td><td>#${escapeHtml(v.household_id)}</td></tr>` : ""}
      ${metres != null ? `<tr><td>${t.toHousehold}</td><td class="to-household">${escapeHtml(t.metres(metres))}</td></tr>` : ""}`;
    box.innerHTML = `<div class="popup visit-popup">${head}${rows}</table></div>`;
  } catch (error) {
    box.innerHTML = `<div class="popup visit-popup">${head}</table><p class="error">${escapeHtml(callProblem(error, { record: true }))}</p></div>`;
  }
}

const statusText = (status) => ({ visited: t.visitedWeek(week), due: t.due, overdue: t.overdue }[status] || status);
const place = (p) => [p.building, p.unit, p.room].filter(Boolean).join("-");
// Below z16 a household feature stands for a stair entrance: `households` of them at one point
// (api/services/tiles.py households_features), with their worst status; its id is merely the
// lowest household id, so its history would be one flat's, not the entrance's.
const isEntrance = (f) => f.layer.id === "households" && Number(f.properties.households) > 1;
// What a feature drawn is: a task, a household, a visit or a grid, whichever layer draws it.
const kind = (f) => (f.layer.id === "tasks-away" ? "tasks" : f.layer.id);

function entrancePopup(p) {
  return `<div class="popup entrance-popup"><h4>${t.entrance} ${escapeHtml([p.building, p.unit].filter(Boolean).join("-"))}</h4>
    <div class="count">${t.entranceCount(p.households)}</div>
    <div>${t.worstStatus}: <span class="status">${escapeHtml(statusText(p.status))}</span></div>
    <div>${t.mostDays}: ${escapeHtml(p.days_since_visit ?? t.never)}</div>
    ${p.must_visit_due ? `<div><b>${t.mustVisitDue}</b></div>` : ""}
    <ul class="entrance-households"><li class="muted">${t.loading}</li></ul>
    <p class="muted">${t.entranceHint}</p><button type="button" class="zoom-in">${t.zoomIn}</button></div>`;
}

const rooms = new Intl.Collator("zh", { numeric: true });
const byRoom = (a, b) => rooms.compare(a.floor || "", b.floor || "") || rooms.compare(a.room || "", b.room || "") || a.id - b.id;

/**
 * The entrance's popup, then its households listed: those at its point, of its grid and kind,
 * as the tile grouped them (GET /api/v1/households?grid_id&kind&lon&lat, every page), each
 * with its status in the week shown (`week=`: the dot's own rule) and a button to its own
 * visit history. The households are kept on the list element for that button.
 */
async function entranceDetail(f, box, back) {
  const p = f.properties;
  box.innerHTML = back + entrancePopup(p);
  const [lon, lat] = f.geometry.coordinates;
  const query = new URLSearchParams({ grid_id: p.grid_id, kind: p.kind, lon, lat, week });
  const list = box.querySelector("ul.entrance-households");
  try {
    const households = (await apiPages(`/api/v1/households?${query}`)).sort(byRoom);
    list.households = households;
    list.innerHTML = households.map((h, i) => {
      const state = h.visit_status || {};
      return `<li data-id="${escapeHtml(h.id)}"><span class="room">${escapeHtml(h.room || place(h) || `#${h.id}`)}</span>
        · <span class="flat-status">${escapeHtml(statusText(state.status))}</span>
        <button type="button" class="history-link" data-i="${i}">${t.history}</button></li>`;
    }).join("") || `<li class="muted">${t.none}</li>`;
  } catch (error) {
    list.innerHTML = `<li class="error">${escapeHtml(callProblem(error))}</li>`;
  }
}

// A `nobody_home` attempt is not a visit (the dot and the days count only visits that found
// someone, as the weekly report does): an attempt since the last visit is told apart. The
// latest attempt differs from the latest visit only when it found nobody.
const attemptLine = (p) => (p.last_attempt && p.last_attempt !== p.last_visited
  ? `<div class="last-attempt">${t.lastAttempt}: ${escapeHtml(p.last_attempt)}</div>` : "");

// A household's visits are read a page at a time, newest first: the popup shows the first,
// and "更早的走访记录" reads the next (GET .../visits?page=n; its X-Pagination says if one is
// left). Until 2026-12-05 the popup showed the ten latest and no more.
const HISTORY_PAGE = 10;

const historyItem = (v) => `<li data-id="${escapeHtml(v.id)}">${escapeHtml(beijingTime(v.visited_at, lang, "full"))}
  · ${escapeHtml(t.outcomes[v.outcome] || v.outcome)} · ${escapeHtml(v.worker_name)}
  · ${escapeHtml(t.grades[v.evidence.grade] || v.evidence.grade)}</li>`;

/** The page after `page` read, or null (without the header, a short page is the last). */
function pageAfter({ items, pagination }, page) {
  if (pagination) return pagination.next_page && pagination.next_page > page ? pagination.next_page : null;
  return items.length < HISTORY_PAGE ? null : page + 1;
}

async function householdDetail(p, box, back) {
  const head = `${back}<h4>#${escapeHtml(p.id)} ${escapeHtml(place(p))}</h4>
    <div>${t.status}: ${escapeHtml(statusText(p.status))}</div>
    <div>${t.daysSince}: ${escapeHtml(p.days_since_visit ?? t.never)}</div>
    ${attemptLine(p)}`;
  box.innerHTML = `<div class="popup household-popup">${head}<p class="muted">${t.loading}</p></div>`;
  const path = `/api/v1/households/${encodeURIComponent(p.id)}/visits`;
  let first;
  try {
    first = await apiPage(path, { page: 1, pageSize: HISTORY_PAGE });
  } catch (error) {
    box.innerHTML = `<div class="popup household-popup">${head}<p class="error">${escapeHtml(callProblem(error, { record: true }))}</p></div>`;
    return;
  }
  let next = pageAfter(first, 1);
  box.innerHTML = `<div class="popup household-popup">${head}<strong>${t.history}</strong>
    <ul class="history">${first.items.map(historyItem).join("") || `<li>${t.none}</li>`}</ul>
    ${next ? `<button type="button" class="older">${t.older}</button>` : ""}</div>`;
  const list = box.querySelector("ul.history");
  const more = box.querySelector("button.older");
  // A visit recorded meanwhile moves the pages on by one: one already shown is not shown twice.
  const seen = new Set(first.items.map((v) => v.id));
  more?.addEventListener("click", async () => {
    if (more.getAttribute("aria-busy") === "true") return;
    more.setAttribute("aria-busy", "true");
    more.textContent = t.loading;
    box.querySelector(".older-error")?.remove();
    try {
      const page = await apiPage(path, { page: next, pageSize: HISTORY_PAGE });
      const fresh = page.items.filter((v) => !seen.has(v.id));
      for (const v of fresh) seen.add(v.id);
      const shown = list.children.length;
      list.insertAdjacentHTML("beforeend", fresh.map(historyItem).join(""));
      const firstNew = list.children[shown];
      firstNew?.scrollIntoView({ block: "nearest" });
      next = pageAfter(page, next);
      more.removeAttribute("aria-busy");
      more.textContent = t.older;
      if (!next) {
        // The keyboard's focus, on the button going, goes to the first visit read.
        const focused = document.activeElement === more;
        more.remove();
        if (focused && firstNew) {
          firstNew.tabIndex = -1;
          firstNew.focus();
        }
      }
    } catch (error) {
      more.removeAttribute("aria-busy");
      more.textContent = t.older; // pressed again, it tries again
      more.insertAdjacentHTML("beforebegin",
        `<p class="error older-error">${escapeHtml(callProblem(error, { record: true }))}</p>`);
    }
  });
}

function hitLabel(f) {
  const p = f.properties;
  if (kind(f) === "tasks") return `${t.task}: ${escapeHtml(p.title)} · ${escapeHtml(t.statuses[p.status] || p.status)}`;
  if (f.layer.id === "visits") {
    return `${t.visit}: ${escapeHtml(p.visited_at)} · ${escapeHtml(t.outcomes[p.outcome] || p.outcome)} · ${escapeHtml(t.grades[p.grade] || p.grade)}`;
  }
  if (isEntrance(f)) {
    return `${t.entrance} ${escapeHtml([p.building, p.unit].filter(Boolean).join("-"))} · ${t.entranceCount(p.households)} · ${escapeHtml(statusText(p.status))}`;
  }
  return `#${p.id} ${escapeHtml(place(p))} · ${escapeHtml(statusText(p.status))}`;
}

/**
 * What a click opens: every task and household drawn under the click point (flats of a stair
 * entrance share one point, and a task at a household sits on it), each openable from a list;
 * a single one opens directly; a grid only when nothing else is there.
 */
function clickPopup(map, e) {
  const order = ["tasks", "households", "visits"];
  const drawing = [...order, "tasks-away", "grids-fill"].filter((id) => map.getLayer(id));
  // From the keyboard (`e.near`): what lies within a few pixels of the crosshair, as a finger
  // would find it; a click takes the pixel clicked.
  const where = e.near ? [[e.point.x - e.near, e.point.y - e.near], [e.point.x + e.near, e.point.y + e.near]] : e.point;
  const hits = map.queryRenderedFeatures(where, { layers: drawing });
  // A task stands beside its place (TASK_BESIDE): a click on a place finds the tasks drawn
  // beside it, a click on a task the households at its place. Either lists both.
  if (map.getZoom() >= TASK_BESIDE_FROM && map.getLayer("tasks")) {
    const [dx, dy] = TASK_BESIDE;
    const moved = Array.isArray(where) ? where.map(([x, y]) => [x + dx, y + dy]) : [where.x + dx, where.y + dy];
    hits.push(...map.queryRenderedFeatures(moved, { layers: ["tasks"] }));
    for (const task of hits.filter((f) => f.layer.id === "tasks")) { // drawn beside its place
      hits.push(...map.queryRenderedFeatures(map.project(task.geometry.coordinates), { layers: ["households"] }));
    }
  }
  const key = (f) => f.properties.id ?? f.properties.visit_id;
  const seen = new Set();
  const unique = hits.filter((f) => {
    const k = `${kind(f)}:${key(f)}`;
    return seen.has(k) ? false : seen.add(k);
  });
  // Tasks, then households (by id), then visits (the latest first).
  const within = (a, b) => (kind(a) === "visits"
    ? String(b.properties.visited_at).localeCompare(String(a.properties.visited_at)) : a.properties.id - b.properties.id);
  const things = unique.filter((f) => order.includes(kind(f)))
    .sort((a, b) => order.indexOf(kind(a)) - order.indexOf(kind(b)) || within(a, b));
  const grid = unique.find((f) => f.layer.id === "grids-fill");
  if (!things.length && !grid) return;
  openPopup?.remove();
  const popup = new maplibregl.Popup({ maxWidth: "340px" }).setLngLat(e.lngLat);
  openPopup = popup;
  const box = document.createElement("div");
  keepFocusIn(popup, box, map);
  const backButton = things.length > 1 ? `<button type="button" class="back">${t.back}</button>` : "";
  const list = () => {
    box.innerHTML = `<div class="popup hit-list"><h4>${t.here(things.length)}</h4><ul>${things.map((f, i) =>
      `<li><button type="button" class="hit" data-i="${i}">${hitLabel(f)}</button></li>`).join("")}</ul></div>`;
  };
  let entrance = null; // the entrance whose households are listed, to come back to
  const open = (f) => {
    entrance = null;
    if (kind(f) === "tasks") box.innerHTML = backButton + taskPopup(f.properties);
    else if (f.layer.id === "visits") visitDetail(f.properties, box, backButton);
    else if (isEntrance(f)) {
      entrance = f;
      entranceDetail(f, box, backButton);
    } else householdDetail(f.properties, box, backButton);
  };
  const backToEntrance = `<button type="button" class="back-entrance">${t.backEntrance}</button>`;
  box.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("hit")) open(things[Number(button.dataset.i)]);
    else if (button.classList.contains("history-link")) {
      // One flat of the entrance: its own popup, as a dot drawn at full zoom opens it.
      const h = button.closest("ul.entrance-households").households[Number(button.dataset.i)];
      const state = h.visit_status || {};
      householdDetail({
        ...h, status: state.status, days_since_visit: state.days_since_visit,
        last_visited: state.last_visited, last_attempt: state.last_attempt,
      }, box, backToEntrance);
    } else if (button.dataset.open) {
      // The task's own page (task_detail.js): its request, history and the caller's steps.
      popup.remove();
      taskPage?.open(Number(button.dataset.open));
    } else if (button.classList.contains("back-entrance")) open(entrance);
    else if (button.classList.contains("back")) list();
    else if (button.classList.contains("zoom-in")) {
      popup.remove();
      map.easeTo({ center: e.lngLat, zoom: Math.max(map.getZoom() + 0.5, 16.5) });
    }
  });
  if (!things.length) box.innerHTML = gridPopup(grid.properties);
  else if (things.length === 1) open(things[0]);
  else list();
  popup.setDOMContent(box).addTo(map);
  keepInSight(map, popup, box);
}

const SIGHT_MARGIN = 8; // px between a popup and the edge of the map

/**
 * A popup opens on the side of the point it fits (MapLibre's choice), then grows as what it
 * reads comes (an entrance's flats, a household's visits): opened above a point in the middle
 * of a phone, its top, with the close button, "← 返回列表" and the heading, went off the top
 * of the screen. Each time it is drawn anew, the map is moved under it until it is in sight:
 * its top first (a popup taller than the map scrolls within, map.css).
 */
function keepInSight(map, popup, box) {
  const fit = () => {
    const el = popup.getElement();
    if (!el?.isConnected || !box.isConnected) return;
    const shown = el.getBoundingClientRect();
    const view = map.getContainer().getBoundingClientRect();
    const above = shown.top - (view.top + SIGHT_MARGIN); // < 0: its top is cut off
    const below = shown.bottom - (view.bottom - SIGHT_MARGIN); // > 0: its bottom is
    const dy = above < 0 ? above : below > 0 ? Math.min(below, above) : 0;
    if (Math.round(dy)) map.panBy([0, dy], { animate: false });
  };
  new MutationObserver(fit).observe(box, { childList: true, subtree: true });
  fit();
}

// The popup open now: its figures are the week's it was opened in (closed when the week changes).
let openPopup = null;
// A task's own page, opened from its popup (made with the map: a step taken draws the tasks anew).
let taskPage = null;

const FOCUSABLE = "button:not([disabled]), a[href], input, [tabindex]:not([tabindex='-1'])";

/**
 * The keyboard's place in a popup. Its content is drawn anew (the list, a household, back;
 * a history read): the button pressed went with the old content and the focus fell to the
 * page, a keyboard user left outside the popup. The focus goes to the first control of what
 * is drawn (the close button when it has none), and back to the map when the popup closes
 * with the focus in it (Escape, its close button). Until 2026-12-05 a popup was a mouse's.
 */
function keepFocusIn(popup, box, map) {
  const lost = () => !document.activeElement || document.activeElement === document.body;
  const refocus = () => {
    if (!lost() || !box.isConnected) return;
    const container = box.closest(".maplibregl-popup");
    (box.querySelector(FOCUSABLE) || container?.querySelector(FOCUSABLE))?.focus();
  };
  new MutationObserver(refocus).observe(box, { childList: true, subtree: true });
  popup.on("close", () => {
    if (openPopup === popup) openPopup = null;
    if (lost()) map.getCanvas().focus();
  });
}

/** Say `text` in the toolbar (nothing: take it away); `retry`, a failure's: the retry button
 * beside it runs it. Until 2026-12-05 a failure could be tried again only by panning the map. */
let retryAction = null;

function showMapStatus(text, retry = null) {
  const el = document.getElementById("map-status");
  el.textContent = text;
  el.hidden = !text;
  retryAction = text ? retry : null;
  document.getElementById("map-retry").hidden = !retryAction;
}

// What the map waits for (its layers' tiles, the user's grids): "正在读取…" in the toolbar,
// after a moment (an answer within it shows nothing, not a flicker at every pan), until all
// has come. Until 2026-12-05 nothing showed: a slow network looked like an empty district.
const LOADING_DELAY_MS = 300;
const waitingFor = new Set();
let loadingTimer = null;

function setLoading(what, on) {
  if (on) waitingFor.add(what);
  else waitingFor.delete(what);
  const el = document.getElementById("map-loading");
  if (!waitingFor.size) {
    clearTimeout(loadingTimer);
    loadingTimer = null;
    el.hidden = true;
  } else if (el.hidden && !loadingTimer) {
    loadingTimer = setTimeout(() => {
      loadingTimer = null;
      el.hidden = !waitingFor.size;
    }, LOADING_DELAY_MS);
  }
}

/** Why the server refused a tile (MapLibre's AJAXError: its status and the problem's body).
 * Status 0: no answer came (the network down, the server or its proxy unreachable). */
async function tileProblem(error) {
  if (error.status === 0) return t.unreachable;
  let detail = "";
  try {
    const body = JSON.parse(await error.body.text());
    detail = body.detail || body.title || "";
  } catch { /* no problem body */ }
  return t.serverSaid(t.refused(error.status), detail);
}

/** Why a call failed (common.js ApiError: its status and the problem's detail; no status: no
 * answer), said as a tile's refusal is. A record's read (`record`) answered 404: the record
 * is no longer the user's to see (moved out of their grids since the tile was drawn). */
function callProblem(error, { record = false } = {}) {
  if (!error.status) return t.unreachable;
  const said = record && error.status === 404 ? t.recordGone : t.refused(error.status === 422 ? 400 : error.status);
  return t.serverSaid(said, error.body?.detail || "");
}

/** Zoom to the user's grids: every page of them (100 a page is within any server's limit). */
// The extent of the user's grids today (fitToGrids): a view over it drawing no grid shows a
// week before they were drawn.
let gridsExtent = null;

/**
 * A place the link asks the map to open at (`?at=lon,lat`, WGS-84, as the reports page's "what
 * keeps coming back" links a place): null when absent or not a place on Earth.
 */
function askedPlace() {
  const at = new URLSearchParams(location.search).get("at");
  const match = /^(-?\d{1,3}(?:\.\d+)?),(-?\d{1,2}(?:\.\d+)?)$/.exec(at || "");
  if (!match) return null;
  const [lon, lat] = [Number(match[1]), Number(match[2])];
  return Math.abs(lon) <= 180 && Math.abs(lat) <= 85 ? { lon, lat } : null;
}

async function fitToGrids(map) {
  setLoading("grids", true);
  let features;
  try {
    features = await apiPages("/api/v1/grids", { pick: (body) => body?.features || [] });
  } finally {
    setLoading("grids", false);
  }
  if (!features.length) {
    showMapStatus(t.noGrids);
    return;
  }
  let bounds = null;
  for (const feature of features) {
    const polys = feature.geometry.type === "Polygon" ? [feature.geometry.coordinates] : feature.geometry.coordinates;
    for (const poly of polys) for (const [lon, lat] of poly[0]) {
      bounds = bounds ? bounds.extend([lon, lat]) : new maplibregl.LngLatBounds([lon, lat], [lon, lat]);
    }
  }
  gridsExtent = bounds;
  const place = askedPlace();
  if (place) {
    // Where the households are drawn, with a pin on the place asked for.
    map.jumpTo({ center: [place.lon, place.lat], zoom: 17 });
    new maplibregl.Marker({ color: COLORS.task }).setLngLat([place.lon, place.lat]).addTo(map)
      .getElement().classList.add("asked-place");
  } else if (bounds) map.fitBounds(bounds, { padding: freePadding(map), animate: false });
}

let saidNoGrids = ""; // the words of sayWeekWithoutGrids, while shown

/**
 * A week before the user's grids were drawn (a past week's grids are that week's): the map
 * over their grids draws none. Said, unless something else is being said (a refusal); taken
 * away once grids are drawn again. Until 2026-12-05 the map was empty without a word.
 */
function sayWeekWithoutGrids(map) {
  const shown = document.getElementById("map-status").textContent;
  const view = map.getBounds();
  const over = gridsExtent && map.getZoom() >= 10
    && view.getWest() <= gridsExtent.getEast() && gridsExtent.getWest() <= view.getEast()
    && view.getSouth() <= gridsExtent.getNorth() && gridsExtent.getSouth() <= view.getNorth();
  const none = over && map.isSourceLoaded("grids") && !map.querySourceFeatures("grids", { sourceLayer: "grids" }).length;
  if (none && (!shown || shown === saidNoGrids)) {
    saidNoGrids = t.weekWithoutGrids(week);
    showMapStatus(saidNoGrids);
  } else if (!none && saidNoGrids && shown === saidNoGrids) {
    saidNoGrids = "";
    showMapStatus("");
  }
}

/**
 * Ask for the layers' tiles again (another week, the refresh, a retry, a task's step taken).
 * MapLibre revalidates a tile it holds by its ETag: one unchanged is taken back without a
 * `data` event, so when it is the last to come no frame is drawn after it and the map's `idle`
 * never comes. "正在读取…" stayed until the map was moved, and a week without grids went
 * unsaid (a week chosen twice: the second time every tile is unchanged). Until the map is
 * idle, it is looked at every moment: every tile come, a frame is asked for, which ends idle.
 */
let settleTimer = null;
const SETTLE_MS = 200;

function askAgain(map, layers = LAYERS) {
  for (const layer of layers) map.getSource(layer).setTiles([tileUrl(layer)]);
  clearTimeout(settleTimer);
  const look = () => {
    if (map.loaded()) map.triggerRepaint(); // drawn with every tile come: `idle` follows
    else settleTimer = setTimeout(look, SETTLE_MS);
  };
  settleTimer = setTimeout(look, SETTLE_MS);
}

/**
 * The padding that keeps what is fitted clear of the panels over the map: the toolbar above,
 * and the legend, left of what is fitted or below it (whichever leaves more of the map). On a
 * phone the toolbar takes two rows and the legend's button sits above the scale: a padding of
 * 40 px put the leader's grids under them.
 */
function freePadding(map) {
  const base = 40;
  const canvas = map.getContainer().getBoundingClientRect();
  const toolbar = document.getElementById("toolbar").getBoundingClientRect();
  const legendBox = document.getElementById("legend").getBoundingClientRect();
  const top = Math.max(base, toolbar.bottom - canvas.top + 10);
  const right = 50; // the zoom buttons
  const below = { top, right, left: base, bottom: Math.max(base, canvas.bottom - legendBox.top + 10) };
  const beside = { top, right, bottom: base, left: Math.max(base, legendBox.right - canvas.left + 10) };
  const area = (p) => Math.max(0, canvas.width - p.left - p.right) * Math.max(0, canvas.height - p.top - p.bottom);
  const padding = area(beside) >= area(below) ? beside : below;
  return area(padding) > 0 ? padding : base;
}

function start() {
  document.getElementById("toolbar").hidden = false;
  const langLink = document.getElementById("lang");
  langLink.textContent = t.other;
  langLink.href = otherLangHref(lang);
  // The accounts page is the community office's: its link is shown to community admins (the
  // role the token was issued with; the page itself asks the server who is signed in).
  document.getElementById("accounts-link").hidden = tokenClaims(getToken()).role !== "community_admin";
  document.getElementById("reports-link").hidden = tokenClaims(getToken()).role === "worker"; // as the API
  document.getElementById("tasks-link").hidden = tokenClaims(getToken()).role === "worker"; // the office's
  document.getElementById("register-link").hidden = tokenClaims(getToken()).role === "worker"; // the office's and leaders' page
  const weekInput = document.getElementById("week");
  weekInput.value = week;
  // The week steps back and on (a bare text box in desktop Firefox and iOS Safari), never past
  // the week under way: a week to come has no visits, every grid drawn red at 0 %.
  const prev = document.getElementById("week-prev");
  const next = document.getElementById("week-next");
  prev.title = t.prevWeek;
  prev.setAttribute("aria-label", t.prevWeek);
  next.title = t.nextWeek;
  next.setAttribute("aria-label", t.nextWeek);
  const stepButtons = () => {
    weekInput.max = isoWeek();
    next.disabled = week >= isoWeek();
  };
  stepButtons();
  const map = new maplibregl.Map({
    container: "map",
    style: style(),
    // The map's own words (the canvas's label, the zoom and close buttons') in the page's language.
    locale: {
      "Map.Title": t.mapLabel, "NavigationControl.ZoomIn": t.zoomInButton,
      "NavigationControl.ZoomOut": t.zoomOutButton, "Popup.Close": t.close,
    },
    center: [116.4, 39.92],
    zoom: 13,
    attributionControl: false,
    transformRequest: (url) =>
      url.startsWith(`${location.origin}/api/`)
        ? { url, headers: { Authorization: `Bearer ${getToken()}` } }
        : { url },
  });
  window.gridworkMap = map;
  taskPage = taskDetail({
    lang, dialog: document.getElementById("task-detail"),
    localTime: (date) => beijingTime(date, lang, "full"),
    changed: () => askAgain(map, ["tasks"]),
  });
  keepFresh();
  // A tile refused with 401 (the token expired while the computer slept): refresh, then fetch
  // the layers' tiles again. When the session itself is over, the page asks to sign in.
  // Any other refusal (a bad week in the link: 422; the server busy: 503), or no answer at all
  // (status 0: offline, the server unreachable), is said on the map, until a tile is drawn
  // again: dropped silently, it left the leader an empty district.
  // A failure said has a retry beside it: the layers' tiles asked for again (an errored tile
  // too), and the user's grids read again if that is what failed.
  let refreshing = false;
  let tilesFailed = "";
  let gridsFailed = false;
  const reloadTiles = () => askAgain(map);
  const retry = () => {
    tilesFailed = "";
    showMapStatus("");
    if (gridsFailed) fit();
    reloadTiles();
  };
  map.on("error", async (e) => {
    const status = e.error?.status;
    if (typeof status === "number" && status !== 401 && LAYERS.includes(e.sourceId)) {
      tilesFailed = t.tilesFailed + (await tileProblem(e.error));
      showMapStatus(tilesFailed, retry);
      return;
    }
    if (status !== 401 || refreshing) return;
    refreshing = true;
    try {
      await refreshAccess(getToken());
      reloadTiles();
    } catch (error) {
      // An ended session reloads the page to sign in. No answer (offline: fetch's TypeError)
      // or a refusal of the refresh is said, with the retry: until 2026-12-05 it was dropped.
      if (!(error instanceof SessionEnded)) {
        tilesFailed = t.tilesFailed + (error instanceof TypeError ? t.unreachable : t.renewFailed);
        showMapStatus(tilesFailed, retry);
      }
    }
    refreshing = false;
  });
  // A tile new to the view, or a source's tiles asked for again (another week, a refresh):
  // loading until the map is idle (every tile drawn or refused).
  map.on("dataloading", (e) => { if (e.dataType === "source") setLoading("tiles", true); });
  map.on("sourcedata", (e) => {
    const el = document.getElementById("map-status");
    if (tilesFailed && e.tile && LAYERS.includes(e.sourceId) && el.textContent === tilesFailed) {
      tilesFailed = "";
      showMapStatus("");
    }
  });
  map.on("idle", () => {
    clearTimeout(settleTimer);
    setLoading("tiles", false);
    sayWeekWithoutGrids(map);
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }));
  legend();
  const showWeek = (value) => {
    week = value;
    weekInput.value = week;
    stepButtons();
    // A popup left open would show the other week's figures over this week's map.
    openPopup?.remove();
    openPopup = null;
    legend();
    askAgain(map);
  };
  const chooseWeek = (value) => {
    const future = value > isoWeek();
    const chosen = future ? isoWeek() : value;
    const url = new URL(location.href);
    url.searchParams.set("week", chosen);
    history.replaceState(null, "", url);
    langLink.href = otherLangHref(lang);
    showWeek(chosen);
    if (future) showMapStatus(t.futureWeek);
  };
  weekInput.addEventListener("change", () => {
    if (weekInput.value) chooseWeek(weekInput.value);
  });
  prev.addEventListener("click", () => chooseWeek(shiftWeek(week, -1)));
  next.addEventListener("click", () => chooseWeek(shiftWeek(week, 1)));
  // The layers are asked for again every few minutes while the page is in sight (and when it
  // comes back into sight after that long): read once, a map watched through the day showed
  // the coverage, dots and tasks of the hour it was opened until it was moved. A tile the
  // browser holds is revalidated by its ETag: unchanged, a 304 (no audit entry).
  let refreshed = Date.now();
  const refresh = () => {
    refreshed = Date.now();
    askAgain(map);
  };
  setInterval(() => { if (document.visibilityState === "visible") refresh(); }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && Date.now() - refreshed >= REFRESH_MS) refresh();
  });
  // A week not chosen (none in the link) is the week under way: a map left open past Sunday
  // midnight (Asia/Shanghai) moves on to the new week, not showing the finished one as current.
  setInterval(() => {
    if (!new URLSearchParams(location.search).has("week") && isoWeek() !== week) showWeek(isoWeek());
    else stepButtons(); // a new week begun: the chosen one may step on to it
  }, 60_000);
  const visitsBox = document.getElementById("show-visits");
  visitsBox.checked = showVisits;
  visitsBox.addEventListener("change", () => {
    showVisits = visitsBox.checked;
    localStorage.setItem(VISITS_KEY, showVisits ? "1" : "0");
    map.setLayoutProperty("visits", "visibility", showVisits ? "visible" : "none");
    document.querySelector("#legend .legend-visits").hidden = !showVisits;
  });
  map.on("click", (e) => clickPopup(map, e));
  // The keyboard: the arrow keys move the map (MapLibre's), a crosshair marks its centre while
  // the map has the focus, and Enter opens the popup of what is under it. Escape closes a popup.
  const crosshair = document.createElement("div");
  crosshair.className = "keyboard-crosshair";
  map.getCanvasContainer().append(crosshair);
  map.getCanvas().addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const { width, height } = map.getCanvas().getBoundingClientRect();
    clickPopup(map, { point: { x: width / 2, y: height / 2 }, lngLat: map.getCenter(), near: 8 });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !openPopup) return;
    const inside = document.activeElement?.closest?.(".maplibregl-popup");
    openPopup.remove();
    if (inside || document.activeElement === document.body) map.getCanvas().focus();
  });
  for (const id of ["tasks", "tasks-away", "households", "visits", "grids-fill"]) {
    map.on("mouseenter", id, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; });
  }
  // A failure is said on the map: a leader looking at an empty district should know why.
  const fit = () => {
    gridsFailed = false;
    fitToGrids(map).catch((error) => {
      if (error.status === 401) signOutHere();
      else {
        gridsFailed = true;
        showMapStatus(t.fitFailed + callProblem(error), retry);
      }
    });
  };
  fit();
  document.getElementById("map-retry").addEventListener("click", () => retryAction?.());
}

// The token is shared with /app (same origin): signing out here signs out there too. The app's
// queued visits stay, tagged with their worker, and sync only when that worker signs in again.
async function signOutHere() {
  await signOut(); // forgets both tokens, in localStorage and in IndexedDB
  location.reload();
}

// The session ended under the map (revoked, the account switched off, the password changed):
// the page reloads to the sign-in form, which says why (once: the flag is for this tab).
const ENDED_KEY = "gridwork.map.sessionEnded";
addEventListener("gridwork:session-ended", () => {
  sessionStorage.setItem(ENDED_KEY, "1");
  location.reload();
});
document.getElementById("signout").addEventListener("click", (e) => { e.preventDefault(); signOutHere(); });

// The language is chosen before signing in too (the toolbar's link shows once signed in).
const signinLang = document.getElementById("signin-lang");
signinLang.textContent = t.other;
signinLang.href = otherLangHref(lang);

const form = document.getElementById("signin");
const begin = wireSignIn({
  form, error: document.getElementById("signin-error"), lang, badLogin: t.badLogin, failed: t.signinFailed, start,
});

if (getToken()) begin();
else {
  if (sessionStorage.getItem(ENDED_KEY)) document.getElementById("signin-error").textContent = t.sessionEnded;
  form.hidden = false;
}
sessionStorage.removeItem(ENDED_KEY);
