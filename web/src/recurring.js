// 未诉先办 ("act before the complaint"): what keeps coming back to a community (GET
// /api/v1/tasks/recurring: a worker's or leader's own grids in it), the phrases its tasks'
// titles keep saying and the places where three tasks or more say one, each beside the weeks
// before. On the reports page a table (a district or street asks for a community first); in
// the workers' app (`compact`) a card to take on the rounds.
import { TASK_TEXT, api, escapeHtml } from "./common.js";

const TEXT = {
  zh: {
    title: "反复出现的问题（未诉先办）",
    how: "近期工单标题里反复出现的说法，以及同一说法在50米内出现3次以上的地点；与之前同样长的时间段相比，上升的排在前面。",
    span: "时间范围", weeks: (n) => `近${n}周`, loading: "正在读取…",
    pickCommunity: "请在上方选择一个社区，查看其中反复出现的问题。",
    failed: "无法读取反复出现的问题。", offline: "网络未连接，无法读取。",
    none: (n) => `近${n}周没有反复出现的问题（同一说法至少3件工单）。`,
    totals: (now, before) => `本期工单 ${now} 件，前期 ${before} 件。`,
    places: "地点", words: "说法", phrase: "说法", grid: "网格", tasks: "工单", previous: "前期",
    where: "位置", sources: "来源", ids: "工单号", onMap: "地图上查看",
    radius: (m) => `约${Math.max(1, Math.round(m))}米内`,
    near: (b, u) => `${/^\d+$/.test(b) ? `${b}号楼` : b}${u ? (/^\d+$/.test(u) ? `${u}单元` : u) : ""}附近`,
    rise: (n) => (n > 0 ? `↑${n}` : n < 0 ? `↓${-n}` : "持平"),
    source: TASK_TEXT.zh.sources,
  },
  en: {
    title: "Problems that keep coming back",
    how: "What the recent tasks' titles keep saying, and the places where three tasks or more within 50 m say one; beside the same span before, the rising first.",
    span: "Span", weeks: (n) => `last ${n} weeks`, loading: "Reading…",
    pickCommunity: "Choose a community above to see what keeps coming back to it.",
    failed: "What keeps coming back could not be read.", offline: "Offline: it cannot be read.",
    none: (n) => `Nothing came back in the last ${n} weeks (three tasks saying the same, at least).`,
    totals: (now, before) => `${now} tasks in this span, ${before} in the span before.`,
    places: "Places", words: "Phrases", phrase: "Phrase", grid: "Grid", tasks: "Tasks", previous: "Before",
    where: "Where", sources: "Sources", ids: "Task numbers", onMap: "On the map",
    radius: (m) => `within ${Math.max(1, Math.round(m))} m`,
    near: (b, u) => `near building ${b}${u ? `, entrance ${u}` : ""}`,
    rise: (n) => (n > 0 ? `↑${n}` : n < 0 ? `↓${-n}` : "same"),
    source: TASK_TEXT.en.sources,
  },
};
const SPANS = [2, 4, 8, 12];

/**
 * The section's state and drawing. `section` is the page's <section> (filled here), `lang` the
 * page's language. `show({community, gridNames})` reads and draws a community (null: a district
 * or street, which asks for one); the span chosen stays when the report's week or area changes.
 * With `openTask(id)`, each task number opens that task's page (task_detail.js).
 */
export function recurringSection(section, lang, { compact = false, openTask = null } = {}) {
  const t = TEXT[lang];
  let weeks = 4;
  let asked = null;
  let loads = 0;
  let failed = false; // the last read of `asked` failed: the next show() reads it again
  section.innerHTML = `<h2>${escapeHtml(t.title)}</h2><p class="muted">${escapeHtml(t.how)}</p>
    <label class="span">${escapeHtml(t.span)} <select>${SPANS.map((n) => `<option value="${n}"${n === weeks ? " selected" : ""}>${escapeHtml(t.weeks(n))}</option>`).join("")}</select></label>
    <p class="status muted" role="status"></p><div class="body"></div>`;
  const status = section.querySelector(".status");
  const body = section.querySelector(".body");
  body.addEventListener("click", (e) => {
    const opener = e.target.closest("button[data-open]");
    if (opener && openTask) openTask(Number(opener.dataset.open));
  });
  section.querySelector("select").addEventListener("change", (e) => {
    weeks = Number(e.target.value);
    if (asked) load(asked);
  });

  const cell = (label, html, cls = "") => `<td class="${cls}" data-label="${escapeHtml(label)}">${html}</td>`;
  const sources = (counts) => Object.entries(counts || {}).sort((a, b) => b[1] - a[1])
    .map(([s, n]) => `${escapeHtml(t.source[s] || s)} ${n}`).join(" · ");
  const ids = (list) => list.map((id) => (openTask
    ? `<button type="button" class="task-link" data-open="${Number(id)}">#${Number(id)}</button>` : `#${Number(id)}`)).join(" ");
  // Where: the registered entrance nearest the place (3号楼2单元附近), and how far its tasks spread.
  const where = (p) => [p.building ? t.near(p.building, p.unit) : null, t.radius(p.radius_m)]
    .filter(Boolean).join(lang === "zh" ? "，" : ", ");

  function draw(result, gridNames) {
    const { places = [], words = [] } = result;
    status.textContent = t.totals(result.tasks, result.previous_tasks);
    if (!places.length && !words.length) {
      body.innerHTML = `<p class="muted none">${escapeHtml(t.none(result.weeks))}</p>`;
      return;
    }
    if (compact) return drawCompact(places, words);
    const placeRows = places.map((p) => `<tr data-phrase="${escapeHtml(p.phrase)}" data-grid="${escapeHtml(p.grid_code)}">
      ${cell(t.phrase, `<strong>${escapeHtml(p.phrase)}</strong>`, "phrase")}
      ${cell(t.grid, escapeHtml(gridNames.get(p.grid_code) || p.grid_code))}
      ${cell(t.tasks, `${p.tasks} <span class="rise${p.tasks < p.previous ? " down" : p.tasks === p.previous ? " same" : ""}">${escapeHtml(t.rise(p.tasks - p.previous))}</span>`, "count")}
      ${cell(t.previous, String(p.previous))}
      ${cell(t.where, escapeHtml(where(p)), "where")}
      ${cell(t.sources, sources(p.sources))}
      ${cell(t.ids, ids(p.task_ids), "ids")}
      ${cell(t.onMap, `<a class="on-map" href="/map?at=${p.lon.toFixed(6)},${p.lat.toFixed(6)}">${escapeHtml(t.onMap)}</a>`)}</tr>`).join("");
    const wordItems = words.map((w) => `<li data-phrase="${escapeHtml(w.phrase)}"><strong>${escapeHtml(w.phrase)}</strong>
      <span class="count">${w.tasks}</span> <span class="rise${w.tasks < w.previous ? " down" : w.tasks === w.previous ? " same" : ""}">${escapeHtml(t.rise(w.tasks - w.previous))}</span>
      <span class="muted">${escapeHtml(t.previous)} ${w.previous}</span></li>`).join("");
    body.innerHTML = `${places.length ? `<h3>${escapeHtml(t.places)}</h3>
      <table class="cards places"><thead><tr><th>${escapeHtml(t.phrase)}</th><th>${escapeHtml(t.grid)}</th>
      <th>${escapeHtml(t.tasks)}</th><th>${escapeHtml(t.previous)}</th><th>${escapeHtml(t.where)}</th>
      <th>${escapeHtml(t.sources)}</th><th>${escapeHtml(t.ids)}</th><th><span class="sr-only">${escapeHtml(t.onMap)}</span></th></tr></thead><tbody>${placeRows}</tbody></table>` : ""}
      ${words.length ? `<h3>${escapeHtml(t.words)}</h3><ul class="words">${wordItems}</ul>` : ""}`;
  }

  /** A phone's card (the workers' app): each place a line, the phrases as chips. */
  function drawCompact(places, words) {
    const placeItems = places.map((p) => `<li data-phrase="${escapeHtml(p.phrase)}"><strong>${escapeHtml(p.phrase)}</strong>
      <span class="count">${p.tasks}</span> <span class="rise${p.tasks < p.previous ? " down" : p.tasks === p.previous ? " same" : ""}">${escapeHtml(t.rise(p.tasks - p.previous))}</span>
      <span class="muted">${[escapeHtml(where(p)), sources(p.sources), ids(p.task_ids)].join(" · ")}</span></li>`).join("");
    const wordItems = words.map((w) => `<li data-phrase="${escapeHtml(w.phrase)}"><strong>${escapeHtml(w.phrase)}</strong>
      <span class="count">${w.tasks}</span> <span class="rise${w.tasks < w.previous ? " down" : w.tasks === w.previous ? " same" : ""}">${escapeHtml(t.rise(w.tasks - w.previous))}</span></li>`).join("");
    body.innerHTML = `${places.length ? `<h3>${escapeHtml(t.places)}</h3><ul class="places">${placeItems}</ul>` : ""}
      ${words.length ? `<h3>${escapeHtml(t.words)}</h3><ul class="words">${wordItems}</ul>` : ""}`;
  }

  async function load(what) {
    const load = ++loads;
    failed = false;
    delete section.dataset.loaded;
    status.textContent = t.loading;
    body.innerHTML = "";
    let result;
    try {
      result = await api(`/api/v1/tasks/recurring?community=${encodeURIComponent(what.community)}&weeks=${weeks}`);
    } catch (error) {
      if (load !== loads) return;
      failed = true;
      status.textContent = error.status ? `${t.failed} ${error.body?.detail || ""}` : t.offline;
      return;
    }
    if (load !== loads) return; // another community or span was asked for meanwhile
    draw(result, what.gridNames);
    section.dataset.loaded = `${what.community}:${weeks}`;
  }

  return {
    show({ community, gridNames = new Map() }) {
      section.hidden = false;
      if (!community) {
        asked = null;
        ++loads;
        status.textContent = t.pickCommunity;
        body.innerHTML = "";
        section.dataset.loaded = "none";
        return;
      }
      // The week changed, not the area: what recurs to now is read once (again if it failed).
      if (asked && asked.community === community && !failed) return;
      asked = { community, gridNames };
      load(asked);
    },
  };
}
