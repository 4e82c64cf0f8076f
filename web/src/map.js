// The grid leader's map: vector tiles of grids, households, visits and tasks, with popups.
import {
  api, config, escapeHtml, getToken, isoWeek, otherLangHref, pickLang, signIn, signOut, translate,
} from "./common.js";
import { keepFresh, refreshAccess } from "./session.js";

const TEXT = {
  zh: {
    title: "网格地图", username: "用户名", password: "密码", signIn: "登录", signOut: "退出",
    week: "周", other: "English", coverage: "本周走访覆盖率", households: "住户", visited: "已走访",
    grid: "网格", legendGrids: "网格覆盖率", legendHouseholds: "住户走访", visitedWeek: "本周已访",
    due: "待访", overdue: "逾期未访", mustVisit: "必访对象", tasks: "任务", taskOpen: "进行中",
    taskOverdue: "已超期", status: "状态", dueAt: "期限", urgency: "紧急程度", history: "走访记录",
    none: "暂无记录", daysSince: "距上次走访(天)", never: "从未", lastVisit: "上次走访",
    badLogin: "用户名或密码错误",
    statuses: {
      new: "新建", dispatched: "已派单", accepted: "已接单", in_progress: "处理中", resolved: "已办结",
      callback: "回访中", closed: "已关闭", returned: "已退回", escalated: "已升级", reopened: "已重启",
      transferred: "已改派",
    },
    outcomes: { met: "见到住户", nobody_home: "无人在家", refused: "拒绝", moved_out: "已搬离", vacant: "空置" },
    grades: { ok: "可信", doubtful: "存疑", suspect: "可疑" },
  },
  en: {
    title: "Grid map", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out",
    week: "Week", other: "中文", coverage: "Coverage this week", households: "Households",
    visited: "Visited", grid: "Grid", legendGrids: "Grid coverage", legendHouseholds: "Household visits",
    visitedWeek: "Visited this week", due: "Due", overdue: "Overdue", mustVisit: "Must-visit",
    tasks: "Tasks", taskOpen: "Open", taskOverdue: "Overdue", status: "Status", dueAt: "Deadline",
    urgency: "Urgency", history: "Visit history", none: "No visits yet", daysSince: "Days since last visit",
    never: "never", lastVisit: "Last visit", badLogin: "Wrong username or password",
    statuses: {
      new: "new", dispatched: "dispatched", accepted: "accepted", in_progress: "in progress",
      resolved: "resolved", callback: "callback", closed: "closed", returned: "returned",
      escalated: "escalated", reopened: "reopened", transferred: "transferred",
    },
    outcomes: { met: "met", nobody_home: "nobody home", refused: "refused", moved_out: "moved out", vacant: "vacant" },
    grades: { ok: "ok", doubtful: "doubtful", suspect: "suspect" },
  },
};
const lang = pickLang();
const t = TEXT[lang];
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
document.title = `${t.title} · gridwork`;
translate(document, t);

const COLORS = { visited: "#2e7d32", due: "#f9a825", overdue: "#c62828", task: "#6a1b9a" };
const LAYERS = ["grids", "households", "visits", "tasks"];
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
        "fill-color": ["interpolate", ["linear"], ["get", "coverage"],
          0, "#d73027", 0.5, "#fee08b", 0.8, "#a6d96a", 1, "#1a9850"],
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
      id: "tasks", type: "circle", source: "tasks", "source-layer": "tasks",
      paint: {
        "circle-radius": 7, "circle-color": ["case", ["get", "overdue"], COLORS.overdue, COLORS.task],
        "circle-stroke-color": "#fff", "circle-stroke-width": 2,
      },
    },
  );
  return { version: 8, sources, layers };
}

function legend() {
  const el = document.getElementById("legend");
  // Colours are set through the DOM: the page's CSP refuses inline style attributes.
  const swatch = (color, dot = false) => `<i class="${dot ? "dot" : ""}" data-color="${color}"></i>`;
  el.innerHTML = `
    <h3>${t.legendGrids}</h3>
    <div>${swatch("#d73027")}0%</div><div>${swatch("#fee08b")}50%</div>
    <div>${swatch("#a6d96a")}80%</div><div>${swatch("#1a9850")}100%</div>
    <h3>${t.legendHouseholds}</h3>
    <div>${swatch(COLORS.visited, true)}${t.visitedWeek}</div>
    <div>${swatch(COLORS.due, true)}${t.due}</div>
    <div>${swatch(COLORS.overdue, true)}${t.overdue}</div>
    <div><i class="dot must-visit"></i>${t.mustVisit}</div>
    <h3>${t.tasks}</h3>
    <div>${swatch(COLORS.task, true)}${t.taskOpen}</div>
    <div>${swatch(COLORS.overdue, true)}${t.taskOverdue}</div>`;
  for (const i of el.querySelectorAll("i[data-color]")) i.style.background = i.dataset.color;
  el.hidden = false;
}

function gridPopup(p) {
  return `<div class="popup grid-popup"><h4>${escapeHtml(p.name)} <small>${escapeHtml(p.code)}</small></h4>
    <table>
      <tr><td>${t.households}</td><td class="households">${p.households}</td></tr>
      <tr><td>${t.visited}</td><td class="visited">${p.visited}</td></tr>
      <tr><td>${t.coverage}</td><td class="coverage">${Math.round(p.coverage * 1000) / 10}%</td></tr>
    </table></div>`;
}

function taskPopup(p) {
  return `<div class="popup task-popup"><h4>${escapeHtml(p.title)}</h4><table>
    <tr><td>${t.status}</td><td class="status">${escapeHtml(t.statuses[p.status] || p.status)}</td></tr>
    <tr><td>${t.dueAt}</td><td>${escapeHtml(p.due_at)}${p.overdue ? ` <b>(${t.taskOverdue})</b>` : ""}</td></tr>
    <tr><td>${t.urgency}</td><td>${escapeHtml(p.urgency)}</td></tr></table></div>`;
}

async function householdPopup(p, popup) {
  const head = `<h4>#${p.id} ${escapeHtml([p.building, p.unit, p.room].filter(Boolean).join("-"))}</h4>
    <div>${t.status}: ${escapeHtml({ visited: t.visitedWeek, due: t.due, overdue: t.overdue }[p.status])}</div>
    <div>${t.daysSince}: ${p.days_since_visit ?? t.never}</div>`;
  popup.setHTML(`<div class="popup household-popup">${head}</div>`);
  try {
    const history = await api(`/api/v1/households/${p.id}/visits?page_size=10`);
    const items = history.map((v) =>
      `<li>${escapeHtml(new Date(v.visited_at).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: "Asia/Shanghai" }))}
        · ${escapeHtml(t.outcomes[v.outcome] || v.outcome)} · ${escapeHtml(v.worker_name)}
        · ${escapeHtml(t.grades[v.evidence.grade] || v.evidence.grade)}</li>`).join("");
    popup.setHTML(`<div class="popup household-popup">${head}<strong>${t.history}</strong>
      <ul class="history">${items || `<li>${t.none}</li>`}</ul></div>`);
  } catch (error) {
    popup.setHTML(`<div class="popup household-popup">${head}<p class="error">${escapeHtml(error.message)}</p></div>`);
  }
}

async function fitToGrids(map) {
  const collection = await api("/api/v1/grids?page_size=1000");
  let bounds = null;
  for (const feature of collection.features || []) {
    const polys = feature.geometry.type === "Polygon" ? [feature.geometry.coordinates] : feature.geometry.coordinates;
    for (const poly of polys) for (const [lon, lat] of poly[0]) {
      bounds = bounds ? bounds.extend([lon, lat]) : new maplibregl.LngLatBounds([lon, lat], [lon, lat]);
    }
  }
  if (bounds) map.fitBounds(bounds, { padding: 40, animate: false });
}

function start() {
  document.getElementById("toolbar").hidden = false;
  const langLink = document.getElementById("lang");
  langLink.textContent = t.other;
  langLink.href = otherLangHref(lang);
  const weekInput = document.getElementById("week");
  weekInput.value = week;
  const map = new maplibregl.Map({
    container: "map",
    style: style(),
    center: [116.4, 39.92],
    zoom: 13,
    attributionControl: false,
    transformRequest: (url) =>
      url.startsWith(`${location.origin}/api/`)
        ? { url, headers: { Authorization: `Bearer ${getToken()}` } }
        : { url },
  });
  window.gridworkMap = map;
  keepFresh();
  // A tile refused with 401 (the token expired while the computer slept): refresh, then fetch
  // the layers' tiles again. When the session itself is over, the page asks to sign in.
  let refreshing = false;
  map.on("error", async (e) => {
    if (e.error?.status !== 401 || refreshing) return;
    refreshing = true;
    try {
      await refreshAccess(getToken());
      for (const layer of LAYERS) map.getSource(layer).setTiles([tileUrl(layer)]);
    } catch { /* offline: the next pan tries again; an ended session reloads the page */ }
    refreshing = false;
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }));
  legend();
  weekInput.addEventListener("change", () => {
    if (!weekInput.value) return;
    week = weekInput.value;
    for (const layer of LAYERS) map.getSource(layer).setTiles([tileUrl(layer)]);
  });
  map.on("click", (e) => {
    const hits = map.queryRenderedFeatures(e.point, { layers: ["tasks", "households", "grids-fill"] });
    if (!hits.length) return;
    const order = ["tasks", "households", "grids-fill"];
    hits.sort((a, b) => order.indexOf(a.layer.id) - order.indexOf(b.layer.id));
    const hit = hits[0];
    const popup = new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(e.lngLat);
    if (hit.layer.id === "grids-fill") popup.setHTML(gridPopup(hit.properties));
    else if (hit.layer.id === "tasks") popup.setHTML(taskPopup(hit.properties));
    else householdPopup(hit.properties, popup);
    popup.addTo(map);
  });
  for (const id of ["tasks", "households", "grids-fill"]) {
    map.on("mouseenter", id, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; });
  }
  fitToGrids(map).catch((error) => {
    if (error.status === 401) signOutHere();
  });
}

// The token is shared with /app (same origin): signing out here signs out there too. The app's
// queued visits stay, tagged with their worker, and sync only when that worker signs in again.
async function signOutHere() {
  await signOut(); // forgets both tokens, in localStorage and in IndexedDB
  location.reload();
}

addEventListener("gridwork:session-ended", () => location.reload());
document.getElementById("signout").addEventListener("click", (e) => { e.preventDefault(); signOutHere(); });

const form = document.getElementById("signin");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(form);
  try {
    await signIn(data.get("username"), data.get("password"));
    form.hidden = true;
    start();
  } catch {
    document.getElementById("signin-error").textContent = t.badLogin;
  }
});

if (getToken()) start();
else form.hidden = false;
