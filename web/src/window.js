// The hall window's page (/window): the A-post worker registers a walk-in resident's request as
// a window task for any grid of the community, placed on a map, and sees the day's requests.
import {
  ApiError, TASK_TEXT, addressWords, api, apiPage, apiPages, beijingInput, beijingTime, carriedOut, config, escapeHtml, getToken, householdAddress,
  newIdempotencyKey, otherLangHref, pickLang, todayLocal, translate, urgencyOption,
} from "./common.js";
import { bootPage, signOutAndReload } from "./password.js";
import { keepFresh, tokenClaims, tokenUser } from "./session.js";
import { taskDetail } from "./task_detail.js";

const TEXT = {
  zh: {
    title: "窗口受理", username: "用户名", password: "密码", signIn: "登录", signOut: "退出", other: "English",
    toApp: "网格员应用", badLogin: "用户名或密码错误", signinFailed: "登录失败：",
    sessionEnded: "登录已失效，请重新登录。", draftKept: "正在填写的诉求已保留，登录后可继续登记。",
    newRequest: "登记居民诉求", type: "诉求类型",
    sourceField: "来源", source_window: "窗口来访", source_hotline: "12345热线工单",
    ticketNumber: "工单编号", ticketDue: "办理时限（北京时间，可不填）",
    ticketDueHint: "按热线派单时给的办理时限填写；不填则按紧急程度计算。",
    redispatch: "热线从其他社区改派来的工单（改派）", needTicket: "请填写工单编号",
    ticketHeld: (n, id) => `工单 ${n} 已登记为任务 #${id}，这次没有重复登记。`,
    ticketHeldNewDue: "热线若延期或更正了办理时限，请打开该任务，在“调整时限”中修改。",
    ticketHeldHidden: (n) => `工单 ${n} 已由本社区登记，这次没有重复登记。`,
    openTask: (id) => `打开任务 #${id}`,
    ticketElsewhere: "该工单由其他社区承办，没有登记。若是12345热线改派给本社区，请勾选“改派”后再登记。",
    todayHotline: "今日登记的12345工单", dayTitleHotline: (d) => `${d} 登记的12345工单`,
    noneHotline: "今天还没有登记的12345工单。", noneThatDayHotline: "这一天没有登记的12345工单。",
    submitHotline: "登记工单并派单",
    resolvedHere: "已在窗口当场办结（不派单）", submitDone: "登记为当场办结", type_consultation: "咨询", type_help: "求助",
    type_complaint: "投诉", type_report: "举报", type_suggestion: "建议",
    titleField: "标题", description: "详细情况", urgency: "紧急程度",
    list: "记入清单", list_none: "不记入", list_need: "需求清单（居民的需求）", list_problem: "问题清单",
    residentName: "居民姓名", residentPhone: "联系电话", where: "地点：",
    noPlace: "请在地图上点选居民诉求的位置", household: "住户（可选）", noHousehold: "不指定住户",
    householdsNear: (n) => `附近 ${n} 户`,
    addressSearch: "按地址查找住户", addressPlaceholder: "如 3号楼2单元502", find: "查找", finding: "正在查找…",
    addressEmpty: "请输入居民的地址，如 3号楼2单元502。",
    tooManyWords: "地址最多四个词（楼栋、单元、楼层、房号）。",
    found: (n) => `找到 ${n} 户，选定一户即定位到该住户：`,
    foundMore: (n, total) => `找到 ${total} 户，只列出前 ${n} 户：请补充单元、房号等。`,
    foundMany: (n) => `列出前 ${n} 户，可能还有更多：请补充单元、房号等。`,
    noMatch: (a, window) => `在${window ? "本社区各网格" : "您可查看的网格"}中没有找到地址为“${a}”的住户。请核对地址，或在地图上点选位置。`,
    findOffline: "网络未连接，无法查找住户。恢复连接后再查，或在地图上点选位置。",
    findFailed: "无法查找住户：", submit: "登记并派单", clear: "清空", sending: "正在提交…",
    mapHint: "在地图上点击居民诉求的位置：所在网格随之确定，任务派给该网格当班的网格员。"
      + "不用鼠标：按 Tab 键移到地图，方向键移动地图，按 Enter 键选定地图中心。",
    today: "今日窗口受理", dayTitle: (d) => `${d} 窗口受理`, day: "查看日期", noneThatDay: "这一天没有登记的诉求。", number: "编号", grid: "网格", status: "状态", assignee: "承办人", due: "办结期限",
    none: "今天还没有登记的诉求。", unassigned: "待分派", listFailed: "无法读取今日受理：",
    needTitle: "请填写标题", needPlace: "请在地图上点选位置",
    fieldWrong: {
      title: { control: "标题只能是一行文字，不能含制表符等控制字符。", blank: "请填写标题", other: "标题有误，请检查。" },
      description: { control: "详细情况不能含空字符（NUL）。", other: "详细情况有误，请检查。" },
      complainant: { control: "姓名、电话只能是一行文字，不能含制表符等控制字符。", other: "姓名或电话有误，请检查。" },
      external_id: { control: "工单编号只能是一行文字，不能含制表符等控制字符。", other: "工单编号有误，请检查。" },
      due_at: { other: "办理时限须晚于现在，且在90天之内。" },
      household_id: { other: "所选住户有误，请重新点选地点。" },
      location: { other: "所选位置有误，请重新点选。" },
    },
    atWindow: "您今天在窗口岗（A岗）：可为本社区任何网格登记居民诉求。",
    admin: "社区管理员可为本社区任何网格登记居民诉求。",
    notAtWindow: "今天您不在窗口岗（A岗），只能为自己的网格登记任务。",
    outsideAll: "此处不在本社区任何网格内，请点选网格范围内的位置。",
    outsideYours: "此处不在您的网格内。今天您不在窗口岗（A岗），只能为自己的网格登记任务。",
    outsideServer: "所选位置不在任何网格内，任务未登记。",
    invalid: "填写有误，任务未登记：", offline: "网络未连接，任务未登记。恢复连接后再点“登记并派单”即可（不会重复登记）。",
    lost: "连接中断，不能确定是否已登记：请查看“今日窗口受理”，没有列出的再点“登记并派单”即可（不会重复登记）。",
    registeredBefore: "上次提交已经登记（见“今日窗口受理”），这次修改没有另行登记。如需更正，请联系承办人。",
    pending: "上次提交仍在处理中，请稍候查看“今日窗口受理”，不要重复登记。",
    failed: "任务未能登记：", gridsFailed: "无法读取网格：", noGrids: "没有可登记的网格。",
    created: (id) => `已登记任务 #${id}`, createdGrid: "网格", createdAssignee: "承办人",
    createdDue: "办结期限", createdContact: "首次联系期限",
    // Unassigned only when no worker is on duty and the grid leader is away too (dispatch falls
    // back to the leader, shown by name): the community's admins are told (tasks.overseers).
    createdNobody: "当班网格员和网格长都不在岗：任务待分派，已通知社区管理员",
    statuses: TASK_TEXT.zh.statuses,
    roles: { worker: "网格员", grid_leader: "网格长", community_admin: "社区管理员", district_viewer: "区级查看" },
  },
  en: {
    title: "Window desk", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out",
    other: "中文", toApp: "Workers' app", badLogin: "Wrong username or password", signinFailed: "Sign-in failed: ",
    sessionEnded: "Your sign-in has ended: sign in again. ", draftKept: "The request being typed is kept, to register once signed in.",
    newRequest: "A resident's request", type: "Request type",
    sourceField: "Source", source_window: "walk-in at the window", source_hotline: "12345 hotline ticket",
    ticketNumber: "Ticket number", ticketDue: "Time limit (Beijing time, optional)",
    ticketDueHint: "The time limit the hotline dispatched the ticket with; left empty, the urgency sets it.",
    redispatch: "The hotline re-dispatched this ticket here from another community", needTicket: "Give the ticket number",
    ticketHeld: (n, id) => `Ticket ${n} is already task #${id}: it was not registered again.`,
    ticketHeldNewDue: "If the hotline extended or corrected its time limit, open the task and change it under “Change deadline”.",
    ticketHeldHidden: (n) => `Ticket ${n} is already registered in this community: it was not registered again.`,
    openTask: (id) => `Open task #${id}`,
    ticketElsewhere: "Another community holds this ticket: nothing was registered. If the 12345 hotline re-dispatched it to you, tick “re-dispatched” and register it again.",
    todayHotline: "12345 tickets registered today", dayTitleHotline: (d) => `12345 tickets registered on ${d}`,
    noneHotline: "No 12345 tickets registered today.", noneThatDayHotline: "No 12345 tickets registered that day.",
    submitHotline: "Register the ticket and dispatch",
    resolvedHere: "Settled here at the window (not dispatched)", submitDone: "Register as settled", type_consultation: "Consultation",
    type_help: "Help", type_complaint: "Complaint", type_report: "Report", type_suggestion: "Suggestion",
    titleField: "Title", description: "Details", urgency: "Urgency",
    list: "On the list", list_none: "on no list", list_need: "need list (a resident's wish)", list_problem: "problem list",
    residentName: "Resident's name", residentPhone: "Phone", where: "Place: ",
    noPlace: "Click the resident's place on the map", household: "Household (optional)", noHousehold: "No household",
    householdsNear: (n) => `${n} nearby`,
    addressSearch: "Find the household by address", addressPlaceholder: "e.g. 3 2 502", find: "Find", finding: "Looking up…",
    addressEmpty: "Type the resident's address, e.g. 3 2 502.",
    tooManyWords: "At most four words (building, unit, floor, room).",
    found: (n) => `${n} found: pick one to place the request there.`,
    foundMore: (n, total) => `${total} found, the first ${n} listed: add the unit or room.`,
    foundMany: (n) => `The first ${n} listed, there may be more: add the unit or room.`,
    noMatch: (a, window) => `No household at "${a}" in ${window ? "the community's grids" : "the grids you may see"}. Check the address, or click the place on the map.`,
    findOffline: "Offline: the household could not be looked up. Try again once online, or click the place on the map.",
    findFailed: "Could not look up the household: ", submit: "Register and dispatch", clear: "Clear", sending: "Sending…",
    mapHint: "Click the place of the request on the map: its grid follows, and the task goes to that grid's worker on duty."
      + " Without a mouse: Tab to the map, move it with the arrow keys, press Enter to take its centre.",
    today: "Today at the window", dayTitle: (d) => `At the window on ${d}`, day: "Day", noneThatDay: "No requests registered that day.", number: "No.", grid: "Grid", status: "Status", assignee: "Assignee", due: "Deadline",
    none: "No requests registered today.", unassigned: "to be assigned", listFailed: "Could not read today's requests: ",
    needTitle: "Give a title", needPlace: "Click a place on the map",
    fieldWrong: {
      title: { control: "The title must be one line, without tabs or other control characters.", blank: "Give a title", other: "Check the title." },
      description: { control: "The details must not hold a NUL character.", other: "Check the details." },
      complainant: { control: "Name and phone must be one line each, without tabs or other control characters.", other: "Check the name and phone." },
      external_id: { control: "The ticket number must be one line, without tabs or other control characters.", other: "Check the ticket number." },
      due_at: { other: "The time limit must be after now and within 90 days." },
      household_id: { other: "Check the household: click the place again." },
      location: { other: "Check the place: click it again." },
    },
    atWindow: "You are at the window (A-post) today: register requests for any grid of the community.",
    admin: "As the community's admin you register requests for any grid of the community.",
    notAtWindow: "You are not at the window (A-post) today: you register tasks for your own grids only.",
    outsideAll: "This place is in no grid of the community: click inside a grid.",
    outsideYours: "This place is not in your grids. You are not at the window (A-post) today: you register tasks for your own grids only.",
    outsideServer: "The place lies in no grid: nothing was registered.",
    invalid: "Something is wrong; nothing was registered: ",
    offline: "Offline: nothing was registered. Once online, press Register again (it will not register twice).",
    lost: "The connection broke: the request may or may not be registered. Look at today's list; if it is not there, press Register again (it will not register twice).",
    registeredBefore: "The last submission was registered (see today's list); this edit of it was not registered again. To correct it, tell the assignee.",
    pending: "The last submission is still being handled: look at today's list shortly, do not register it again.",
    failed: "The task was not registered: ", gridsFailed: "Could not read the grids: ", noGrids: "No grids to register for.",
    created: (id) => `Task #${id} registered`, createdGrid: "Grid", createdAssignee: "Assignee",
    createdDue: "Deadline", createdContact: "First contact by", createdNobody: "No worker on duty and the grid leader away: waiting to be assigned, the community's admins told",
    statuses: TASK_TEXT.en.statuses,
    roles: { worker: "worker", grid_leader: "grid leader", community_admin: "community admin", district_viewer: "district viewer" },
  },
};
const lang = pickLang();
const t = TEXT[lang];
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
document.title = `${t.title} · gridwork`;
translate(document, t);

const $ = (id) => document.getElementById(id);
const form = $("task-form");
const COLORS = { yours: "#0d6e6e", other: "#5c6bc0", selected: "#e65100" };
const NEAR_M = 80; // households offered around the place clicked, in the worker's own grids

let grids = new Map(); // code -> the grid's feature (GET /api/v1/grids/window)
let atWindow = false;
// The community office (its admin) registers the 12345 hotline's tickets here too.
let office = false;
const hotline = () => office && form.elements.source.value === "hotline";
let map = null;
let marker = null;
let chosen = null; // {lon, lat, grid: feature}
// The Idempotency-Key of the request being registered, with the body it was sent with: a
// double click, or a retry after a lost answer, sends the same key and gets the first task
// back; a changed form is another request, with a new key.
let pending = null;
let sending = false;
let todayTasks = []; // the requests registered today (GET /tasks?created_by=me&source=window&created_on=today)
let todayRead = false; // todayTasks read from the server at least once
// The day listed (#day): today, or an earlier one chosen to answer a resident who comes back.
const dayInput = $("day");
const listedDay = () => dayInput.value || todayLocal();
let listedSource = "window"; // the requests listed: the window's, or the 12345 tickets (the office's)

const beijing = (when) => beijingTime(when, lang);
const gridLabel = (code) => {
  const g = grids.get(code);
  return g ? (lang === "zh" ? `${g.properties.name}（${code}）` : `${g.properties.name} (${code})`) : code || "";
};

// --- the map ---------------------------------------------------------------------------------
function style(collection) {
  const sources = { grids: { type: "geojson", data: collection, promoteId: "code" } };
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }];
  // No external base map is reachable from most of China: the grids are drawn on a plain
  // background unless the server names a base map (BASEMAP_URL), as on /map.
  if (config.basemapUrl) {
    sources.basemap = { type: "raster", tiles: [config.basemapUrl], tileSize: 256 };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  layers.push(
    {
      id: "grids-fill", type: "fill", source: "grids",
      paint: { "fill-color": ["case", ["get", "yours"], COLORS.yours, COLORS.other], "fill-opacity": 0.18 },
    },
    { id: "grids-line", type: "line", source: "grids", paint: { "line-color": "#37474f", "line-width": 1.5 } },
    {
      id: "grid-selected", type: "line", source: "grids", filter: ["==", ["get", "code"], ""],
      paint: { "line-color": COLORS.selected, "line-width": 3.5 },
    },
  );
  return { version: 8, sources, layers };
}

/** The polygons' outer rings of a feature. */
function rings(feature) {
  const g = feature.geometry;
  return (g.type === "Polygon" ? [g.coordinates] : g.coordinates).map((poly) => poly[0]);
}

/** Where a grid's name is written: the centroid of its largest ring. (Text layers need glyph
 * files from a server: the names are HTML markers instead.) */
function labelPoint(feature) {
  let best = null;
  for (const ring of rings(feature)) {
    let a = 0; let cx = 0; let cy = 0;
    for (let i = 0; i < ring.length - 1; i++) {
      const [x0, y0] = ring[i]; const [x1, y1] = ring[i + 1];
      const f = x0 * y1 - x1 * y0;
      a += f; cx += (x0 + x1) * f; cy += (y0 + y1) * f;
    }
    if (a && (!best || Math.abs(a) > best.area)) best = { area: Math.abs(a), point: [cx / (3 * a), cy / (3 * a)] };
  }
  return best ? best.point : rings(feature)[0][0];
}

function drawMap(collection) {
  map = new maplibregl.Map({
    container: "map", style: style(collection), center: [116.4, 39.93], zoom: 13, attributionControl: false,
  });
  window.gridworkWindowMap = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }));
  for (const feature of collection.features) {
    const el = document.createElement("div");
    el.className = `grid-label${feature.properties.yours ? " yours" : ""}`;
    el.textContent = feature.properties.name;
    new maplibregl.Marker({ element: el }).setLngLat(labelPoint(feature)).addTo(map);
  }
  let bounds = null;
  for (const feature of collection.features) {
    for (const ring of rings(feature)) for (const [lon, lat] of ring) {
      bounds = bounds ? bounds.extend([lon, lat]) : new maplibregl.LngLatBounds([lon, lat], [lon, lat]);
    }
  }
  if (bounds) map.fitBounds(bounds, { padding: 30, animate: false });
  map.on("click", (e) => place(e.lngLat));
  keyboardPlace();
  map.on("mouseenter", "grids-fill", () => { map.getCanvas().style.cursor = "crosshair"; });
  map.on("mouseleave", "grids-fill", () => { map.getCanvas().style.cursor = ""; });
}

/** The resident's place clicked: a marker, and the grid under it named; outside every grid
 * drawn, refused (the server would refuse it too: 422 outside every grid, 403 another's grid). */
function place(lngLat) {
  const hit = map.queryRenderedFeatures(map.project(lngLat), { layers: ["grids-fill"] })[0];
  const grid = hit && grids.get(hit.properties.code);
  fieldError("location", "");
  if (!grid) {
    unplace();
    fieldError("location", atWindow ? t.outsideAll : t.outsideYours);
    return;
  }
  placeAt(lngLat, grid);
}

/** The request placed at `lngLat` in `grid`: the marker, the grid outlined and named, and the
 * households offered there (`household`: the one found by its address, attached). */
function placeAt(lngLat, grid, household = null) {
  chosen = { lon: round(lngLat.lng), lat: round(lngLat.lat), grid };
  if (!marker) marker = new maplibregl.Marker({ color: COLORS.selected });
  marker.setLngLat(lngLat).addTo(map);
  map.setFilter("grid-selected", ["==", ["get", "code"], grid.properties.code]);
  $("place").textContent = `${gridLabel(grid.properties.code)} · ${chosen.lon}, ${chosen.lat}`;
  $("place").dataset.grid = grid.properties.code;
  offerHouseholds(grid, household);
}

/** The place from the keyboard, for a worker typing at the window: tabbed to, the map moves
 * with the arrow keys (MapLibre's own) and Enter takes its centre, marked by a crosshair
 * while the map has the keyboard's focus; placed, the focus goes on to the submit button. */
function keyboardPlace() {
  const box = $("map");
  const crosshair = document.createElement("div");
  crosshair.className = "crosshair";
  crosshair.setAttribute("aria-hidden", "true");
  box.append(crosshair);
  const canvas = map.getCanvas();
  // Only a keyboard's focus: a mouse click focuses the canvas too, and places where it clicks.
  canvas.addEventListener("focus", () => box.classList.toggle("keyboard", canvas.matches(":focus-visible")));
  canvas.addEventListener("blur", () => box.classList.remove("keyboard"));
  canvas.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    place(map.getCenter());
    if (chosen) $("submit").focus();
  });
}

const round = (x) => Math.round(x * 1e6) / 1e6;

function unplace() {
  chosen = null;
  marker?.remove();
  map?.setFilter("grid-selected", ["==", ["get", "code"], ""]);
  $("place").textContent = t.noPlace;
  delete $("place").dataset.grid;
  offerHouseholds(null);
}

const householdName = (h) => [h.building, h.unit, h.room].filter(Boolean).join("-") || `#${h.id}`;

/** In the worker's own grids the households near the place are offered (another grid's are
 * not theirs to look up: that request is placed by its location). `picked`: the household
 * found by its address, attached as it is (the resident named it: no neighbours offered). */
async function offerHouseholds(grid, picked = null) {
  const box = $("household-choice");
  const select = box.querySelector("select");
  select.length = 1;
  select.options[0].textContent = t.noHousehold;
  box.hidden = true;
  if (picked) {
    select.add(new Option(householdName(picked), picked.id));
    select.value = String(picked.id);
    box.hidden = false;
    return;
  }
  if (!grid || !grid.properties.yours) return;
  const at = chosen;
  const query = new URLSearchParams({ grid_id: grid.id, lon: at.lon, lat: at.lat, within_m: NEAR_M });
  let households;
  try {
    households = await apiPages(`/api/v1/households?${query}`);
  } catch {
    return; // the place is enough
  }
  if (chosen !== at || !households.length) return;
  const rooms = new Intl.Collator("zh", { numeric: true });
  households.sort((a, b) => rooms.compare(householdName(a), householdName(b)));
  for (const h of households) select.add(new Option(householdName(h), h.id));
  const near = t.householdsNear(households.length);
  select.options[0].textContent = lang === "zh" ? `${t.noHousehold}（${near}）` : `${t.noHousehold} (${near})`;
  box.hidden = false;
}

// --- the household found by its address --------------------------------------------------------
// With no base map the map is grid outlines only: where the resident's building stands cannot
// be seen on it, and a click is a guess. The address they say finds their household and places
// the request there: at the window (A-post) in any grid of the community (`GET
// /households/window`: address, grid and point only), else in the grids the caller may see
// (`GET /households?address=`).
const FIND_MAX = 20; // households listed for one address: more, and the worker adds a word
let findAsked = 0; // the latest lookup: an earlier one answering late is dropped
let foundHouseholds = new Map(); // id -> household listed

const addressOf = (h) => householdAddress(h, lang);

function findSays(text, isError = false) {
  const status = $("address-status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function clearFound() {
  findAsked++;
  foundHouseholds = new Map();
  const list = $("address-results");
  list.innerHTML = "";
  list.hidden = true;
  findSays("");
}

async function findHouseholds() {
  clearFound();
  const words = addressWords($("address").value);
  if (!words.length) return findSays(t.addressEmpty, true);
  if (words.length > 4) return findSays(t.tooManyWords, true);
  const asked = findAsked;
  findSays(t.finding);
  const query = new URLSearchParams({ address: words.join(" ") });
  let items, total;
  try {
    if (atWindow) {
      items = await api(`/api/v1/households/window?${query}`); // at most FIND_MAX, no count
      total = items.length;
    } else {
      const answer = await apiPage(`/api/v1/households?${query}`, { pageSize: FIND_MAX });
      ({ items } = answer);
      total = answer.pagination?.total ?? items.length;
    }
  } catch (error) {
    if (asked !== findAsked || error.status === 401) return; // 401: the page asks to sign in
    if (!(error instanceof ApiError)) {
      findSays(navigator.onLine ? t.findFailed + (error.message || String(error)) : t.findOffline, true);
    } else {
      findSays(t.findFailed + (error.body?.detail || error.body?.title || error.message), true);
    }
    return;
  }
  if (asked !== findAsked) return;
  const found = items.filter((h) => grids.has(h.grid_code)); // on the map: the grids registered for
  if (!found.length) return findSays(t.noMatch(words.join(" "), atWindow), true);
  if (atWindow && total >= FIND_MAX) findSays(t.foundMany(found.length));
  else findSays(total > found.length ? t.foundMore(found.length, total) : t.found(found.length));
  foundHouseholds = new Map(found.map((h) => [String(h.id), h]));
  const list = $("address-results");
  list.innerHTML = found.map((h) => `<li><button type="button" data-household="${Number(h.id)}">`
    + `${escapeHtml(addressOf(h))} · ${escapeHtml(gridLabel(h.grid_code))}</button></li>`).join("");
  list.hidden = false;
}

/** A household found picked: the request placed at its point (the map brought there), the
 * household attached; the focus goes on to the submit button, as a place taken with Enter. */
function pickHousehold(h) {
  const grid = grids.get(h.grid_code);
  if (!grid || !map) return;
  fieldError("location", "");
  map.jumpTo({ center: [h.lon, h.lat], zoom: Math.max(map.getZoom(), 16) });
  placeAt({ lng: h.lon, lat: h.lat }, grid, h);
  clearFound();
  findSays(`${addressOf(h)} · ${gridLabel(h.grid_code)}`);
  $("submit").focus();
}

function wireFinder() {
  const input = $("address");
  const list = $("address-results");
  input.placeholder = t.addressPlaceholder;
  input.disabled = false;
  $("address-find").disabled = false;
  $("address-find").addEventListener("click", findHouseholds);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault(); // looks the address up: the form is not sent
      findHouseholds();
    } else if (e.key === "ArrowDown" && !list.hidden) {
      e.preventDefault();
      list.querySelector("button")?.focus();
    }
  });
  list.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-household]");
    const h = button && foundHouseholds.get(button.dataset.household);
    if (h) pickHousehold(h);
  });
  list.addEventListener("keydown", (e) => {
    const buttons = [...list.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const next = at + (e.key === "ArrowDown" ? 1 : -1);
      (next < 0 ? input : buttons[Math.min(next, buttons.length - 1)]).focus();
    } else if (e.key === "Escape") {
      input.focus();
    }
  });
}

// --- the form --------------------------------------------------------------------------------
function fieldError(field, text) {
  const el = form.querySelector(`.field-error[data-field="${field}"]`);
  if (el) el.textContent = text;
}

/** `task`: the number of a task the refusal names (a ticket registered before), opened from
 * the box. */
function formError(why, detail = "", task = null) {
  const box = $("form-error");
  const open = task ? `<button type="button" class="task-link" data-open="${Number(task)}">${escapeHtml(t.openTask(task))}</button>` : "";
  box.innerHTML = why ? `<span class="why">${escapeHtml(why)}</span>${detail ? `<span class="detail">${escapeHtml(detail)}</span>` : ""}${open}` : "";
  box.hidden = !why;
}

const settledHere = () => atWindow && !hotline() && form.elements.resolved_here.checked;
const submitWord = () => (hotline() ? t.submitHotline : settledHere() ? t.submitDone : t.submit);

function clearErrors() {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  formError("");
}

function body() {
  const data = new FormData(form);
  const out = {
    source: hotline() ? "hotline" : "window",
    type: data.get("type") || "help",
    title: String(data.get("title") || "").trim(),
    urgency: data.get("urgency") || "general",
  };
  if (data.get("list")) out.list = data.get("list"); // the need or problem list the office keeps
  if (settledHere()) out.resolved_here = true; // settled at the window: not dispatched
  if (out.source === "hotline") {
    out.external_id = String(data.get("external_id") || "").trim();
    if (data.get("due_at")) out.due_at = beijingInput(String(data.get("due_at")));
    if (data.get("redispatch")) out.redispatch = true;
  }
  const description = String(data.get("description") || "").trim();
  if (description) out.description = description;
  const complainant = {};
  const name = String(data.get("name") || "").trim();
  const phone = String(data.get("phone") || "").trim();
  if (name) complainant.name = name;
  if (phone) complainant.phone = phone;
  if (name || phone) out.complainant = complainant;
  const household = data.get("household_id");
  if (household) out.household_id = Number(household);
  else if (chosen) out.location = { lon: chosen.lon, lat: chosen.lat };
  return out;
}

/** The server's field errors (`errors.json`), under their fields in the worker's words (the
 * server's are English, a contact's nested as JSON); the server's own words, for the form's
 * box; "" when no field of the form was named. */
function showFieldErrors(problem) {
  const fields = problem?.errors?.json || {};
  const said = [];
  for (const [field, messages] of Object.entries(fields)) {
    const text = typeof messages === "string" ? messages : Array.isArray(messages) ? messages.join(" ") : JSON.stringify(messages);
    const wrong = t.fieldWrong[field];
    if (!wrong || !form.querySelector(`.field-error[data-field="${field}"]`)) continue;
    const kind = /control characters|NUL/.test(text) ? "control" : /blank/.test(text) ? "blank" : "other";
    fieldError(field, wrong[kind] || wrong.other);
    said.push(`${field}: ${text.replace(/[{}[\]"]/g, "")}`);
  }
  return said.join("; ");
}

async function submit(e) {
  e.preventDefault();
  if (sending) return; // a double click: the first is on its way
  clearErrors();
  // The last request's box goes: beside this one's refusal it read as this one registered.
  // (It stays listed under today's requests.)
  $("created").hidden = true;
  const request = body();
  let missing = false;
  if (request.source === "hotline" && !request.external_id) { fieldError("external_id", t.needTicket); missing = true; }
  if (!request.title) { fieldError("title", t.needTitle); missing = true; }
  if (!request.location && !request.household_id) { fieldError("location", t.needPlace); missing = true; }
  if (missing) {
    // To the first field missing: a worker at the keyboard goes on from there (the map, moved
    // with the arrow keys, takes Enter for its centre).
    if (request.source === "hotline" && !request.external_id) form.elements.external_id.focus();
    else if (!request.title) form.elements.title.focus();
    else map?.getCanvas().focus();
    return;
  }
  const text = JSON.stringify(request);
  // Registered, the request is today's: an earlier day's list gives way to today's (and only
  // today's tells a lost answer's request registered).
  if (dayInput.value !== todayLocal()) {
    showDay(todayLocal());
    loadToday();
  }
  // After a lost answer the first request may be registered: an edit goes with its key, so the
  // server registers one of them, never both (and says so: `idempotency_key` "reused").
  // With it, the requests listed today before it went (read then): after a lost answer, a new
  // one like it in the list is this one registered.
  if (!pending || (pending.text !== text && !pending.uncertain)) {
    pending = { key: newIdempotencyKey("window"), text, before: todayRead ? new Set(todayTasks.map((x) => x.id)) : null };
  }
  pending.text = text;
  sending = true;
  const button = $("submit");
  button.disabled = true;
  button.textContent = t.sending;
  try {
    const task = await api("/api/v1/tasks", {
      method: "POST", body: text,
      headers: { "Content-Type": "application/json", "Idempotency-Key": pending.key },
    });
    pending = null;
    showCreated(task);
    resetForm();
    loadToday();
  } catch (error) {
    refused(error, request);
  } finally {
    sending = false;
    button.disabled = false;
    button.textContent = submitWord();
  }
}

/** Why the task was not registered, in the worker's words, with the server's beneath. A 5xx
 * without a problem document of the API's (a proxy's 502 or 504: its wait for the answer ran
 * out, the request carried out or not) says nothing of the request: as a lost answer. The
 * API's own 5xx rolled its transaction back: not registered. */
function refused(error, request = null) {
  const gateway = error instanceof ApiError && error.status >= 500 && typeof error.body?.status !== "number";
  if (!(error instanceof ApiError) || gateway) {
    if (!navigator.onLine) {
      formError(t.offline); // nothing went
      return;
    }
    // Online, the request went and its answer is what was lost: registered or not, today's
    // list tells (read again).
    if (pending) pending.uncertain = true;
    formError(t.lost, error.message || String(error));
    const lost = pending;
    loadToday().then((read) => { if (read && lost && pending === lost) settleLost(lost); });
    return;
  }
  const detail = error.body?.detail || error.body?.title || error.message;
  if (error.status === 401) return; // the session ended: the page asks to sign in again
  if (error.status === 403) {
    formError(t.notAtWindow, detail);
  } else if (error.status === 422 && error.body?.idempotency_key === "reused") {
    // The request whose answer was lost was registered; this edit of it was not. The form is
    // cleared: pressed again, it would register the edit as a second request.
    pending = null;
    resetForm();
    formError(t.registeredBefore, detail);
    loadToday();
  } else if (error.status === 422 && error.body?.errors?.json?.location && !error.body?.errors?.json?.title) {
    formError(t.outsideServer, detail);
    fieldError("location", atWindow ? t.outsideAll : t.outsideYours);
  } else if (error.status === 422) {
    formError(t.invalid, showFieldErrors(error.body) || detail);
  } else if (error.status === 409 && error.body?.held_elsewhere) {
    // Another community's ticket: re-dispatched here (改派) only when the hotline says so.
    formError(t.ticketElsewhere, detail);
    form.elements.redispatch.focus();
  } else if (error.status === 409 && error.body?.ticket_held) {
    // The ticket registered before (typed twice, or by a colleague): never a second task.
    const number = request.external_id;
    const id = error.body?.task_id;
    const why = id ? t.ticketHeld(number, id) + (request.due_at ? t.ticketHeldNewDue : "") : t.ticketHeldHidden(number);
    formError(why, detail, id);
  } else if (carriedOut(error)) {
    formError(t.pending, detail);
    loadToday(); // the worker is told to look there: read it again
  } else {
    // Another 409 says to send it again (a grid retired meanwhile, the same ticket received
    // elsewhere at the same moment): nothing was registered.
    formError(t.failed, detail);
  }
}

/** The answer lost, today's list read again: a request there that was not before, as this
 * one was sent, is this one registered; said as if the answer had come (its number, the form
 * cleared for the next resident, the key let go). Kept, the key went with the next resident's
 * request, refused as an edit of this one, and the form wiped: that request never registered.
 * Not found, the key stays (a retry or an edit gets the first task, or registers it once). */
function settleLost(lost) {
  if (!lost.before) return; // the list was never read before it went: nothing to tell it by
  const sent = JSON.parse(lost.text);
  const task = todayTasks.find((x) => !lost.before.has(x.id)
    && x.title === sent.title && x.type === sent.type && x.urgency === sent.urgency);
  if (!task) return;
  pending = null;
  formError("");
  showCreated(task);
  resetForm();
}

function showCreated(task) {
  const box = $("created");
  box.dataset.id = task.id;
  const who = task.assignee_name || (task.assignee_id ? `#${task.assignee_id}` : t.createdNobody);
  box.innerHTML = `<h3>${escapeHtml(t.created(task.id))}${lang === "zh" ? "：" : ": "}${escapeHtml(task.title)}</h3>
    <dl>
      <dt>${t.createdGrid}</dt><dd class="grid">${escapeHtml(gridLabel(task.grid_code))}</dd>
      <dt>${t.status}</dt><dd class="status">${escapeHtml(t.statuses[task.status] || task.status)}</dd>
      <dt>${t.createdAssignee}</dt><dd class="assignee">${escapeHtml(who)}</dd>
      <dt>${t.createdDue}</dt><dd class="due">${escapeHtml(beijing(task.due_at))}</dd>
      ${task.first_contact_due_at ? `<dt>${t.createdContact}</dt><dd class="contact-due">${escapeHtml(beijing(task.first_contact_due_at))}</dd>` : ""}
    </dl>`;
  box.hidden = false;
}

/** The form emptied for the next resident, the focus back at its first field (the request
 * type): the worker goes on typing, not reaching for the mouse. */
function resetForm() {
  // The source stays: the office registering the morning's tickets goes on with the next one.
  const source = form.elements.source.value;
  form.reset();
  form.elements.source.value = source;
  showSource();
  clearFound();
  clearErrors();
  unplace();
  labelUrgencies();
  form.querySelector("input[name=type]:checked")?.focus();
}

/** The ticket's fields, the button's words and the day's list follow the source chosen. */
function showSource() {
  const ticket = hotline();
  $("ticket-fields").hidden = !ticket;
  // Settled at the window: only by the worker holding it today, only a walk-in.
  $("resolved-here-choice").hidden = !atWindow || ticket;
  if (!sending) $("submit").textContent = submitWord();
  form.dataset.source = ticket ? "hotline" : "window";
}

// --- the deadlines each urgency gives (the community's, GET .../task-settings) -----------------
let deadlines = null;

/** Each urgency with the time the task will be given, for the request type chosen (the
 * server's `effective` hours: the type's own, else the community's, else the default). */
function labelUrgencies() {
  const type = new FormData(form).get("type") || "help";
  for (const option of form.elements.urgency.options) {
    const u = option.value;
    option.textContent = urgencyOption(lang, u, deadlines?.effective?.[type]?.deadline_hours?.[u]);
  }
}

async function loadDeadlines(community) {
  try {
    deadlines = await api(`/api/v1/communities/${encodeURIComponent(community)}/task-settings`);
  } catch {
    return; // the defaults stay shown: the task is given the server's deadline all the same
  }
  labelUrgencies();
  form.dataset.deadlines = community;
}

// --- today's requests --------------------------------------------------------------------------
async function loadToday() {
  const status = $("today-status");
  const day = listedDay();
  const source = listedSource;
  const today = day === todayLocal();
  let tasks;
  try {
    tasks = await apiPages(`/api/v1/tasks?created_by=me&source=${source}&created_on=${day}`);
  } catch (error) {
    if (day === listedDay()) status.textContent = t.listFailed + (error.message || String(error));
    return false;
  }
  // Another day, or the other source, chosen meanwhile: its own read shows it.
  if (day !== listedDay() || source !== listedSource) return false;
  todayTasks = tasks.sort((a, b) => b.id - a.id);
  todayRead = today;
  const ticket = hotline();
  status.textContent = tasks.length ? "" : today ? (ticket ? t.noneHotline : t.none) : (ticket ? t.noneThatDayHotline : t.noneThatDay);
  // No request yet: the sentence says so, without a table of headings over no rows.
  $("today-tasks").hidden = !tasks.length;
  renderToday();
  return true;
}

/** The list of `day` (YYYY-MM-DD), its heading saying which; read again. */
function showDay(day) {
  const today = todayLocal();
  dayInput.max = today;
  dayInput.value = day > today ? today : day;
  listedSource = hotline() ? "hotline" : "window";
  const ticket = listedSource === "hotline";
  $("today-title").textContent = dayInput.value === today ? (ticket ? t.todayHotline : t.today)
    : ticket ? t.dayTitleHotline(dayInput.value) : t.dayTitle(dayInput.value);
  todayTasks = [];
  todayRead = false;
  $("today-status").textContent = "";
  $("today-tasks").hidden = true;
  renderToday();
}
dayInput.addEventListener("change", () => {
  showDay(dayInput.value || todayLocal());
  loadToday();
});

// A request's number opens its page (task_detail.js): who holds it, what was done so far, to
// answer the resident who comes back.
// A step taken there (the community admin leads every grid) shows in today's list.
const detail = taskDetail({
  lang, dialog: $("task-detail"), localTime: beijing, changed: () => loadToday(),
});
// A refusal naming the task a ticket was registered as opens it too.
$("form-error").addEventListener("click", (e) => {
  const opener = e.target.closest("button[data-open]");
  if (opener) detail.open(Number(opener.dataset.open));
});
document.querySelector("#today-tasks").addEventListener("click", (e) => {
  const opener = e.target.closest("button[data-open]");
  if (opener) detail.open(Number(opener.dataset.open));
});
// The requests move on out in the grids (accepted, resolved) while the list stands: read again
// as a request's page closes (it said how the request stands now: the list beside it said how
// it stood when last read, perhaps hours before), as the worker comes back to the page, and
// every few minutes while it is in view.
const RELIST_MS = 3 * 60_000;
const relist = () => { if (!$("main").hidden && document.visibilityState === "visible") loadToday(); };
$("task-detail").addEventListener("close", relist);
document.addEventListener("visibilitychange", relist);
setInterval(relist, RELIST_MS);

/** Today's rows; drawn again once the grids come (read beside them, the list may come first,
 * when a grid could be named only by its code). */
function renderToday() {
  const tbody = document.querySelector("#today-tasks tbody");
  // The keyboard's place kept: drawn anew, the number focused would drop the focus to the top.
  const focused = tbody.contains(document.activeElement) ? document.activeElement.dataset.open : null;
  tbody.innerHTML = todayTasks.map((task) => `<tr data-id="${escapeHtml(task.id)}">
    <td><button type="button" class="task-link" data-open="${Number(task.id)}">#${Number(task.id)}</button></td><td class="title">${escapeHtml(task.title)}</td>
    <td class="grid">${escapeHtml(gridLabel(task.grid_code))}</td>
    <td class="status">${escapeHtml(t.statuses[task.status] || task.status)}</td>
    <td class="assignee">${escapeHtml(task.assignee_name || (task.assignee_id ? `#${task.assignee_id}` : t.unassigned))}</td>
    <td class="due">${escapeHtml(beijing(task.due_at))}</td></tr>`).join("");
  if (focused) tbody.querySelector(`button[data-open="${CSS.escape(focused)}"]`)?.focus();
}

// --- signing in --------------------------------------------------------------------------------
let signedInAs = null; // the user the page was started for

/** The sign-in ended under the page (the password changed, signed out everywhere, revoked): the
 * sign-in form, saying why, over the page kept as it is. Reloaded, it lost the request a
 * resident had just given, typed and placed. */
function sessionEnded() {
  $("toolbar").hidden = true;
  $("main").hidden = true;
  if ($("task-detail").open) $("task-detail").close(); // modal: the form beneath it is out of reach
  const signin = $("signin");
  signin.elements.password.value = "";
  const data = new FormData(form);
  const typed = chosen || ["title", "description", "name", "phone", "external_id"].some((f) => String(data.get(f) || "").trim());
  $("signin-error").textContent = t.sessionEnded + (typed ? t.draftKept : "");
  signin.hidden = false;
  signin.elements.password.focus();
}

/** Signed in again after `sessionEnded`: the same worker goes on where they were; another
 * user gets the page afresh (the grids and posts are theirs, the request typed was not). */
function resume() {
  if (tokenUser(getToken()) !== signedInAs) {
    location.reload();
    return;
  }
  $("signin-error").textContent = "";
  $("toolbar").hidden = false;
  $("main").hidden = false;
  keepFresh();
  loadToday();
}

async function start() {
  if (signedInAs !== null) return resume();
  signedInAs = tokenUser(getToken());
  $("toolbar").hidden = false;
  $("main").hidden = false;
  const langLink = $("lang");
  langLink.textContent = t.other;
  langLink.href = otherLangHref(lang);
  keepFresh();
  $("place").textContent = t.noPlace;
  form.addEventListener("submit", submit);
  form.addEventListener("change", (e) => {
    if (e.target.name === "type") labelUrgencies();
    if (e.target.name === "resolved_here") showSource();
    if (e.target.name === "source") {
      showSource();
      clearErrors();
      showDay(listedDay());
      loadToday();
    }
  });
  labelUrgencies();
  $("clear").addEventListener("click", () => { resetForm(); pending = null; });
  api("/api/v1/auth/me").then((me) => {
    $("who").textContent = `${me.display_name || me.username} · ${t.roles[me.role] || me.role}`;
  }).catch(() => {});
  showDay(todayLocal());
  loadToday();
  let collection;
  try {
    collection = await api("/api/v1/grids/window");
  } catch (error) {
    if (error.status === 401) return signOutAndReload();
    const notice = $("post-notice");
    notice.textContent = t.gridsFailed + (error.body?.detail || error.message);
    notice.hidden = false;
    $("submit").disabled = true;
    return;
  }
  atWindow = collection.at_window;
  grids = new Map(collection.features.map((f) => [f.properties.code, f]));
  const community = collection.features[0]?.properties.community_code;
  if (community) loadDeadlines(community);
  renderToday(); // by their grids' names now
  const notice = $("post-notice");
  // The role the token was issued with: an admin opens tasks in every grid of the community.
  const admin = tokenClaims(getToken()).role === "community_admin";
  office = admin;
  $("source-choice").hidden = !admin;
  showSource();
  const post = atWindow ? t.atWindow : admin ? t.admin : t.notAtWindow;
  notice.textContent = collection.features.length ? post : t.noGrids;
  notice.classList.toggle("at-window", atWindow || admin);
  notice.hidden = false;
  drawMap(collection);
  wireFinder();
  document.body.dataset.ready = "1";
}

bootPage({ lang, t, start, sessionEnded });
