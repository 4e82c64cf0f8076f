// The resident register's page (/register, 住户登记册): the community office's and the grid
// leaders' households — listed and filtered, a household's facts corrected, a household taken out
// of the register (moved out, demolished…) or put back, and the register file imported (new
// households, or a changed register) and exported (to edit and import again).
//
// The API decides who may do what (api/scope.py): a community admin their community's
// households, a grid leader their grids'; a district viewer reads (phones masked) and may not
// export; a worker is told the page is the office's and the leaders'.
import {
  ApiError, CARE_TAGS, OCCUPANCIES, api, apiBlob, apiOnce, apiPage, apiPages, escapeHtml, householdAddress, isoWeek, pageWords, saveBlob,
  todayLocal,
} from "./common.js";
import { clearErrors, fieldWords, wordsFor } from "./forms.js";
import { bootPage, openPage } from "./password.js";

const PAGE_SIZE = 50;
const EDITORS = ["grid_leader", "community_admin"]; // who corrects, removes and imports here
const AUDITORS = ["community_admin", "district_viewer"]; // who reads the audit log (/audit)

// occupancy_owner… in each language, the words common.js OCCUPANCIES gives (the app's too).
function occupancyWords(i) {
  return Object.fromEntries(Object.entries(OCCUPANCIES).map(([k, words]) => [`occupancy_${k}`, words[i]]));
}

const TEXT = {
  zh: {
    title: "住户登记册", username: "用户名", password: "密码", signIn: "登录", signOut: "退出", other: "English",
    badLogin: "用户名或密码错误", signinFailed: "登录失败：",
    toMap: "← 网格地图", toAccounts: "账号管理", toRosters: "排班", toReports: "走访覆盖周报", toAudit: "审计日志", toApp: "网格员应用",
    role_grid_leader: "网格长", role_community_admin: "社区管理员", role_district_viewer: "街道/区级查看", role_worker: "网格员",
    grid: "网格", allGrids: "全部网格", tag: "标签", allTags: "全部", kind: "类型", allKinds: "全部",
    kind_residence: "住宅", kind_business: "商铺/企业",
    status: "登记状态", status_active: "在册", status_removed: "已移出", status_all: "全部",
    occupancy: "居住性质", ...occupancyWords(0), unknown: "未登记",
    address: "地址", members: "人数", tags: "标签", phone: "电话", visit: "本周走访", actions: "操作",
    building: "楼栋", unit: "单元", floor: "楼层", room: "房号",
    addressSearch: "地址", addressPlaceholder: "如 7号楼 2单元 502", tooManyWords: "地址最多四个词（楼栋、单元、楼层、房号）。",
    visit_visited: "已走访", visit_due: "待走访", visit_overdue: "逾期未访", never: "从未走访",
    lastVisited: (day) => `上次 ${day}`,
    removedOn: (day, reason) => `${day} 移出（${reason}）`,
    reason: "移出原因", reason_moved_out: "已搬离", reason_demolished: "已拆除", reason_closed: "已停业/关闭",
    reason_duplicate: "重复登记", reason_other: "其他",
    effectiveDate: "移出日期", note: "说明（选填，最多 200 字）",
    edit: "编辑", audit: "审计", auditTitle: "谁查看或修改过该住户的信息（审计日志）", remove: "移出登记册", restore: "恢复", save: "保存", cancel: "取消",
    newHousehold: "登记新住户", sameEntrance: "同楼门登记", registerButton: "登记", lon: "经度", lat: "纬度",
    newTitle: "登记新住户", entranceTitle: (a) => `登记新住户：与 ${a} 同一楼门`,
    entranceHint: "位置与该住户相同（同一楼门的住户在地图上是同一个点）；所在网格按位置确定。",
    pointHint: "位置：WGS-84 经纬度（如 116.4025、39.9087），所在网格按位置确定。同一楼门已有住户时，请在该住户一行点“同楼门登记”。",
    registered: (a, grid) => `已登记 ${a}（${grid}）。`, badNumber: "须为数字。",
    prev: "上一页", next: "下一页",
    pageInfo: (page, pages, total) => `第 ${page}/${pages} 页 · 共 ${total} 户`,
    none: "没有符合条件的住户。", loading: "正在读取…",
    editTitle: (a) => `编辑住户：${a}`, removalTitle: (a) => `将 ${a} 移出登记册？`, restoreTitle: (a) => `恢复 ${a}？`,
    removalHint: "移出后，从移出日期起不再安排走访，不在地图、走访计划、导出和周报中出现；此前各周的记录不变。可以恢复。",
    restoreText: "恢复后如同从未移出：此后各周重新计入走访，移出期间被拒收的走访记录可再次同步。",
    placeHint: "位置（经纬度）请在导出的登记表中修改后，以“按文件更新”导入。",
    saved: (a) => `已保存 ${a} 的修改。`, removed: (a) => `${a} 已移出登记册。`, restored: (a) => `${a} 已恢复到登记册。`,
    unchanged: "没有修改。", cannotClear: "已登记的内容不能清空。", required: "必填。",
    notForYou: "住户登记册由社区办公室和网格长维护，此页面不对您开放。",
    viewerReadOnly: "街道/区级查看：只读，电话已隐去。",
    importTitle: "导入登记表（CSV / Excel）",
    importHint: "列：楼栋、单元、楼层、房号、经度、纬度、类型、居住性质、人数、标签、电话（可用导出的登记表作模板）。全部成功才导入：有任何一行出错，则一户也不导入，并列出出错的行。按文件更新时，文件中删去的住户不会因此移出登记册：搬离、拆除的住户请在下方列表中点“移出登记册”。",
    file: "文件", modeCreate: "新增住户（已登记的住户不能重复导入）", modeUpdate: "按文件更新已登记住户（未登记的新增）",
    import: "导入", importing: "正在导入…", chooseFile: "请先选择文件。",
    imported: (created, updated, unchanged) => `导入成功：新增 ${created} 户，更新 ${updated} 户，未变 ${unchanged} 户。`,
    byGrid: "各网格新增：", ignored: (cols) => `未读取的列：${cols}。`, noteRows: (rows) => `作为填表说明跳过的行：${rows}。`,
    headerRow: (n) => `表头在第 ${n} 行，其上各行已跳过。`,
    importRefused: "未导入（一户也没有导入）：", rowsHead: ["行", "列", "问题"],
    moreProblems: (n) => `（只列出前 ${n} 个问题）`,
    exportTitle: "导出登记表：", exportXlsx: "Excel", exportCsv: "CSV", exporting: "正在导出…", exportFailed: "导出失败：",
    failed: "操作失败：", serverSaid: "服务器答复：",
    columns: {
      building: "楼栋", unit: "单元", floor: "楼层", room: "房号", lon: "经度", lat: "纬度", kind: "类型",
      occupancy: "居住性质", members: "人数", tags: "标签", phone: "电话", "lon/lat": "经纬度",
      "building/unit/floor/room": "地址",
    },
  },
  en: {
    title: "Resident register", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out", other: "中文",
    badLogin: "Wrong username or password", signinFailed: "Sign-in failed: ",
    toMap: "← Grid map", toAccounts: "Accounts", toRosters: "Rosters", toReports: "Weekly report", toAudit: "Audit log", toApp: "Workers' app",
    role_grid_leader: "Grid leader", role_community_admin: "Community admin", role_district_viewer: "District viewer", role_worker: "Grid worker",
    grid: "Grid", allGrids: "All grids", tag: "Tag", allTags: "All", kind: "Kind", allKinds: "All",
    kind_residence: "Residence", kind_business: "Business",
    status: "Register", status_active: "In the register", status_removed: "Removed", status_all: "All",
    occupancy: "Occupancy", ...occupancyWords(1), unknown: "Not recorded",
    address: "Address", members: "Members", tags: "Tags", phone: "Phone", visit: "Visit this week", actions: "Actions",
    building: "Building", unit: "Unit", floor: "Floor", room: "Room",
    addressSearch: "Address", addressPlaceholder: "e.g. 7 2 502", tooManyWords: "At most four words (building, unit, floor, room).",
    visit_visited: "Visited", visit_due: "Due", visit_overdue: "Overdue", never: "never visited",
    lastVisited: (day) => `last ${day}`,
    removedOn: (day, reason) => `removed ${day} (${reason})`,
    reason: "Reason", reason_moved_out: "Moved out", reason_demolished: "Demolished", reason_closed: "Closed",
    reason_duplicate: "A duplicate", reason_other: "Other",
    effectiveDate: "Left on", note: "Note (optional, up to 200 characters)",
    edit: "Edit", audit: "Audit", auditTitle: "Who read or changed this household's data (the audit log)", remove: "Remove from the register", restore: "Restore", save: "Save", cancel: "Cancel",
    newHousehold: "Register a household", sameEntrance: "Register one at this entrance", registerButton: "Register", lon: "Longitude", lat: "Latitude",
    newTitle: "Register a household", entranceTitle: (a) => `Register a household at the entrance of ${a}`,
    entranceHint: "At this household's point (a stair entrance's flats are one point on the map); its grid is the one the point lies in.",
    pointHint: "Its point: WGS-84 longitude and latitude (116.4025, 39.9087); its grid is the one the point lies in. Where a household of its entrance is registered, use \"Register one at this entrance\" on that household's row.",
    registered: (a, grid) => `${a} registered (${grid}).`, badNumber: "Must be a number.",
    prev: "Previous", next: "Next",
    pageInfo: (page, pages, total) => `Page ${page} of ${pages} · ${total} households`,
    none: "No households match.", loading: "Loading…",
    editTitle: (a) => `Edit household: ${a}`, removalTitle: (a) => `Remove ${a} from the register?`, restoreTitle: (a) => `Restore ${a}?`,
    removalHint: "From the day it left it is due no visit and is not on the map, in the plan, the export or the weekly report; earlier weeks stay as they were. It can be restored.",
    restoreText: "It comes back as if it had never left: the weeks since count it again, and visits refused meanwhile may be synced again.",
    placeHint: "To move its point (longitude, latitude), edit it in the exported register and import that with \"update\".",
    saved: (a) => `${a}: changes saved.`, removed: (a) => `${a} is out of the register.`, restored: (a) => `${a} is back in the register.`,
    unchanged: "Nothing changed.", cannotClear: "A recorded value cannot be cleared.", required: "Required.",
    notForYou: "The community office and the grid leaders keep the resident register: this page is not for you.",
    viewerReadOnly: "District viewer: read only, phones masked.",
    importTitle: "Import a register file (CSV / Excel)",
    importHint: "Columns: building, unit, floor, room, lon, lat, kind, occupancy, members, tags, phone (or the Chinese headers; the exported register is a template). All or nothing: if any row is wrong, no household is imported and the wrong rows are listed. Updating from a file removes no household left out of it: take a household that moved out or was demolished out of the register on its row below.",
    file: "File", modeCreate: "New households (a registered one is refused)", modeUpdate: "Update registered households from the file (new ones are added)",
    import: "Import", importing: "Importing…", chooseFile: "Choose a file first.",
    imported: (created, updated, unchanged) => `Imported: ${created} new, ${updated} updated, ${unchanged} unchanged.`,
    byGrid: "New by grid: ", ignored: (cols) => `Columns not read: ${cols}.`, noteRows: (rows) => `Rows skipped as the template's notes: ${rows}.`,
    headerRow: (n) => `The header is on row ${n}; the rows above it were skipped.`,
    importRefused: "Not imported (no household was): ", rowsHead: ["Row", "Column", "Problem"],
    moreProblems: (n) => `(the first ${n} problems only)`,
    exportTitle: "Export the register: ", exportXlsx: "Excel", exportCsv: "CSV", exporting: "Exporting…", exportFailed: "The export failed: ",
    failed: "It failed: ", serverSaid: "The server said: ",
  },
};
const { lang, t } = pageWords(TEXT);

const $ = (selector, root = document) => root.querySelector(selector);
const tagName = (tag) => CARE_TAGS[tag]?.[lang === "zh" ? 0 : 1] || tag;
const listSep = lang === "zh" ? "、" : ", ";
const state = {
  me: null,
  editor: false,
  auditor: false, // reads the audit log: each row links to its household's history there
  grids: [], // [{id, code, name}]
  page: 1,
  rows: new Map(), // the households shown, by id
  listAsked: 0, // only the last list asked for is shown
};

function say(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
  el.hidden = !text;
}

const address = (h) => householdAddress(h, lang); // 7号楼 2单元 3层 301

function gridLabel(code) {
  const grid = state.grids.find((g) => g.code === code);
  return grid?.name ? `${grid.name} ${code}` : code;
}

// The grid's name with its code under it (accounts.css): one line, the 15-digit code beside the
// name made the column the table's widest.
function gridCell(code) {
  const name = state.grids.find((g) => g.code === code)?.name;
  return `<span class="grid">${name ? `${escapeHtml(name)} <small>${escapeHtml(code)}</small>` : escapeHtml(code)}</span>`;
}

function visitCell(h) {
  const v = h.visit_status;
  if (!v) return "—";
  const last = v.last_visited ? t.lastVisited(v.last_visited.slice(0, 10)) : t.never;
  return `<span class="visit ${escapeHtml(v.status)}">${escapeHtml(t[`visit_${v.status}`] || v.status)}</span> <small class="muted">${escapeHtml(last)}</small>`;
}

function rowHtml(h) {
  const removal = h.removal;
  let actions = "";
  if (state.editor) {
    actions = removal
      ? `<button type="button" data-action="restore">${t.restore}</button>`
      : `<button type="button" data-action="edit">${t.edit}</button><button type="button" data-action="entrance">${t.sameEntrance}</button>`
        + `<button type="button" data-action="remove" class="danger">${t.remove}</button>`;
  }
  if (state.auditor) {
    actions += `<a class="audit" href="/audit?household=${h.id}" title="${escapeHtml(t.auditTitle)}">${t.audit}</a>`;
  }
  const registered = removal
    ? `<b>${escapeHtml(t.removedOn(removal.effective_date, t[`reason_${removal.reason}`] || removal.reason))}</b>${removal.note ? `<br><small>${escapeHtml(removal.note)}</small>` : ""}`
    : t.status_active;
  // Cells are classed col-*: a bare .grid or .status is the page's own style (accounts.css).
  const cell = (name, html) => `<td class="col-${name}" data-label="${escapeHtml(t[name])}">${html}</td>`;
  return `<tr data-id="${h.id}" class="${removal ? "off" : ""}">
    <td class="col-address">${escapeHtml(address(h))}</td>
    ${cell("grid", gridCell(h.grid_code))}
    ${cell("kind", escapeHtml(t[`kind_${h.kind}`] || h.kind))}
    ${cell("occupancy", h.occupancy ? escapeHtml(t[`occupancy_${h.occupancy}`] || h.occupancy) : `<span class="muted">—</span>`)}
    ${cell("members", h.members ?? `<span class="muted">—</span>`)}
    ${cell("tags", (h.tags || []).map((tag) => `<span class="tag">${escapeHtml(tagName(tag))}</span>`).join("") || `<span class="muted">—</span>`)}
    ${cell("phone", h.phone ? escapeHtml(h.phone) : `<span class="muted">—</span>`)}
    ${cell("visit", removal ? "—" : visitCell(h))}
    ${cell("status", registered)}
    <td class="actions">${actions}</td></tr>`;
}

function filters() {
  const query = new URLSearchParams();
  const words = $("#filter-address").value.trim();
  if (words) query.set("address", words);
  const grid = $("#filter-grid").value;
  if (grid) query.set("grid", grid);
  if ($("#filter-tag").value) query.set("tags", $("#filter-tag").value);
  if ($("#filter-kind").value) query.set("kind", $("#filter-kind").value);
  query.set("status", $("#filter-status").value);
  query.set("week", isoWeek());
  return query;
}

async function loadHouseholds() {
  const body = $("#households tbody");
  const asked = ++state.listAsked;
  body.innerHTML = `<tr><td colspan="10" class="muted">${t.loading}</td></tr>`;
  try {
    const { items, pagination } = await apiPage(`/api/v1/households?${filters()}`, { page: state.page, pageSize: PAGE_SIZE });
    if (asked !== state.listAsked) return;
    if (!items.length && state.page > 1) {
      // Its last household removed or restored away from this list: the page before.
      state.page = Math.max(1, Math.min(state.page - 1, pagination?.total_pages || 1));
      return loadHouseholds();
    }
    state.rows = new Map(items.map((h) => [h.id, h]));
    body.innerHTML = items.map(rowHtml).join("") || `<tr><td colspan="10" class="muted">${t.none}</td></tr>`;
    const total = pagination?.total ?? items.length;
    $("#page-info").textContent = t.pageInfo(state.page, Math.max(1, pagination?.total_pages ?? 1), total);
    $("#prev").disabled = !pagination?.previous_page;
    $("#next").disabled = !pagination?.next_page;
  } catch (error) {
    if (asked !== state.listAsked) return;
    // The address's words are cut as the API cuts them (3号楼2单元502 is three): its 422 says
    // there were more than four.
    const why = error.body?.errors?.query?.address ? t.tooManyWords : error.message;
    body.innerHTML = `<tr><td colspan="10" class="error">${escapeHtml(why)}</td></tr>`;
  }
}

/**
 * A dialog's form sent: its button held while `send` runs; answered, the dialog closes, what
 * `said(answer)` says is said and the list read again. Refused, the refusal is said in the form
 * (`refused`, by default each field's beside it and a 409 naming none beside `fallbackField`);
 * no answer, that it failed.
 */
async function sendDialog(form, dialog, send, said, { sent = {}, fallbackField = null, refused = null } = {}) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const answer = await send();
    dialog.close();
    say(said(answer));
    await loadHouseholds();
  } catch (error) {
    if (!(error instanceof ApiError) || !error.status) form.querySelector(".form-error").textContent = t.failed + error.message;
    else if (refused) refused(error);
    else showErrors(form, error, sent, fallbackField);
  } finally {
    button.disabled = false;
  }
}

/** A field's own refusal found before sending (`changes`, `newHousehold` throw it). */
function fieldRefused(form, error) {
  form.querySelector(`.field-error[data-field="${error.field}"]`).textContent = error.message;
}

// --- correcting a household, or registering one ---------------------------------------------------
const editDialog = $("#edit-dialog");
const editForm = $("#edit-form");
let editing = null; // the household corrected; null when registering one
let entrance = null; // registering: the household whose point it takes (null: the point typed)

$("#tag-options").insertAdjacentHTML("beforeend", Object.keys(CARE_TAGS).map((tag) =>
  `<label class="tag-option"><input type="checkbox" name="tags" value="${tag}"> ${escapeHtml(tagName(tag))}</label>`).join(""));

function openEdit(h) {
  editing = h;
  entrance = null;
  clearErrors(editForm);
  $("#point-part").hidden = true;
  $("#place-hint").hidden = false;
  $("#edit-title").textContent = t.editTitle(address(h));
  editForm.querySelector("button[type=submit]").textContent = t.save;
  const f = editForm.elements;
  for (const name of ["building", "unit", "floor", "room", "phone"]) f[name].value = h[name] ?? "";
  f.kind.value = h.kind;
  // The register takes no "unknown" back for a recorded occupancy: offered only while none is.
  f.occupancy.querySelector("option[value='']").hidden = Boolean(h.occupancy);
  f.occupancy.value = h.occupancy ?? "";
  f.members.value = h.members ?? "";
  for (const box of editForm.querySelectorAll("input[name=tags]")) box.checked = (h.tags || []).includes(box.value);
  editDialog.showModal();
}

/** The form for a new household: at `from`'s point with its building and unit filled in (a flat
 * of the same stair entrance), or at the point typed. */
function openNew(from = null) {
  editing = null;
  entrance = from;
  clearErrors(editForm);
  editForm.reset();
  const f = editForm.elements;
  if (from) {
    f.building.value = from.building;
    f.unit.value = from.unit ?? "";
    f.kind.value = from.kind;
  }
  f.occupancy.querySelector("option[value='']").hidden = false;
  $("#point-part").hidden = false;
  $("#point-hint").textContent = from ? t.entranceHint : t.pointHint;
  editForm.querySelector(".point-fields").hidden = Boolean(from);
  $("#place-hint").hidden = true;
  $("#edit-title").textContent = from ? t.entranceTitle(address(from)) : t.newTitle;
  editForm.querySelector("button[type=submit]").textContent = t.registerButton;
  editDialog.showModal();
  (from ? f.floor : f.building).focus();
}

/** A new household's fields as the API takes them (POST /households). */
function newHousehold() {
  const f = editForm.elements;
  const body = { building: f.building.value.trim(), kind: f.kind.value };
  for (const name of ["unit", "floor", "room", "phone"]) if (f[name].value.trim()) body[name] = f[name].value.trim();
  if (f.occupancy.value) body.occupancy = f.occupancy.value;
  if (f.members.value.trim() !== "") body.members = Number(f.members.value.trim());
  body.tags = [...editForm.querySelectorAll("input[name=tags]:checked")].map((box) => box.value);
  if (entrance) {
    body.lon = entrance.lon;
    body.lat = entrance.lat;
  } else {
    for (const name of ["lon", "lat"]) {
      const value = f[name].value.trim().replace("，", ".");
      if (value === "" || !Number.isFinite(Number(value))) throw Object.assign(new Error(value === "" ? t.required : t.badNumber), { field: name });
      body[name] = Number(value);
    }
  }
  return body;
}

/** The fields changed in the form, as the API takes them (PATCH sends only those). */
function changes(h) {
  const f = editForm.elements;
  const body = {};
  for (const name of ["building", "unit", "floor", "room"]) {
    if (f[name].value.trim() !== (h[name] ?? "")) body[name] = f[name].value.trim();
  }
  if (f.kind.value !== h.kind) body.kind = f.kind.value;
  if (f.occupancy.value && f.occupancy.value !== h.occupancy) body.occupancy = f.occupancy.value;
  const members = f.members.value.trim();
  if (members === "" && h.members != null) throw Object.assign(new Error(t.cannotClear), { field: "members" });
  if (members !== "" && Number(members) !== h.members) body.members = Number(members);
  const tags = [...editForm.querySelectorAll("input[name=tags]:checked")].map((box) => box.value);
  const had = h.tags || [];
  if (tags.length !== had.length || tags.some((tag) => !had.includes(tag))) body.tags = tags;
  if (f.phone.value.trim() !== (h.phone ?? "")) body.phone = f.phone.value.trim();
  return body;
}

editForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const h = editing;
  clearErrors(editForm);
  if (!h) return register();
  let body;
  try {
    body = changes(h);
  } catch (error) {
    return fieldRefused(editForm, error);
  }
  if (!Object.keys(body).length) {
    editDialog.close();
    say(t.unchanged);
    return;
  }
  // An address made another registered household's (409) is said beside the building.
  await sendDialog(editForm, editDialog, () => api(`/api/v1/households/${h.id}`, { method: "PATCH", body }),
    (saved) => t.saved(address(saved)), { sent: body, fallbackField: "building" });
});

async function register() {
  let body;
  try {
    body = newHousehold();
  } catch (error) {
    return fieldRefused(editForm, error);
  }
  // Sent again after a lost answer with the same key: registered once, not a 409 of itself.
  // Outside every grid (422, `location`) said under the point; the address registered at the
  // point already (409) beside the building.
  await sendDialog(editForm, editDialog, () => apiOnce("/api/v1/households", { method: "POST", body }),
    (made) => t.registered(address(made), gridLabel(made.grid_code)), { sent: body, fallbackField: "building" });
}

// --- taking a household out of the register, and back -------------------------------------------
const removalDialog = $("#removal-dialog");
const removalForm = $("#removal-form");
let removing = null;

function openRemoval(h) {
  removing = h;
  clearErrors(removalForm);
  $("#removal-title").textContent = t.removalTitle(address(h));
  const f = removalForm.elements;
  f.reason.value = "moved_out";
  f.effective_date.value = todayLocal();
  f.effective_date.max = todayLocal();
  f.note.value = "";
  removalDialog.showModal();
}

removalForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const h = removing;
  clearErrors(removalForm);
  const f = removalForm.elements;
  const body = { reason: f.reason.value };
  if (f.effective_date.value) body.effective_date = f.effective_date.value;
  if (f.note.value.trim()) body.note = f.note.value.trim();
  // Sent again after a lost answer with the same key: the first answer, not a 409.
  await sendDialog(removalForm, removalDialog,
    () => apiOnce(`/api/v1/households/${h.id}/removal`, { method: "POST", body, once: h.updated_at }),
    () => t.removed(address(h)), { sent: body });
});

const restoreDialog = $("#restore-dialog");
const restoreForm = $("#restore-form");
let restoring = null;

function openRestore(h) {
  restoring = h;
  clearErrors(restoreForm);
  $("#restore-title").textContent = t.restoreTitle(address(h));
  restoreDialog.showModal();
}

restoreForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const h = restoring;
  clearErrors(restoreForm);
  await sendDialog(restoreForm, restoreDialog,
    () => apiOnce(`/api/v1/households/${h.id}/removal`, { method: "DELETE", once: h.updated_at }),
    () => t.restored(address(h)), {
      // A refusal the page knows is said in its words (the address registered again since …).
      refused: (error) => {
        const said = fieldMessage(error.message);
        restoreForm.querySelector(".form-error").textContent = said === error.message ? t.serverSaid + said : said;
      },
    });
});

for (const dialog of [editDialog, removalDialog, restoreDialog]) {
  dialog.querySelector("button.cancel").addEventListener("click", () => dialog.close());
}

$("#households tbody").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const h = state.rows.get(Number(button.closest("tr").dataset.id));
  if (!h) return;
  const action = button.dataset.action;
  if (action === "edit") openEdit(h);
  else if (action === "entrance") openNew(h);
  else if (action === "remove") openRemoval(h);
  else if (action === "restore") openRestore(h);
});

// --- the register file: import and export -------------------------------------------------------
const importForm = $("#import-form");

function importOutcome(html) {
  const box = $("#import-outcome");
  box.innerHTML = html;
  box.hidden = !html;
}

function importedHtml(result) {
  const lines = [`<p><b>${escapeHtml(t.imported(result.created, result.updated, result.unchanged))}</b></p>`];
  const byGrid = Object.entries(result.by_grid || {});
  if (byGrid.length) lines.push(`<p>${t.byGrid}${byGrid.map(([code, n]) => `${escapeHtml(gridLabel(code))}：${n}`).join(listSep)}</p>`);
  if (result.header_row > 1) lines.push(`<p class="muted">${escapeHtml(t.headerRow(result.header_row))}</p>`);
  if (result.note_rows?.length) lines.push(`<p class="muted">${escapeHtml(t.noteRows(result.note_rows.join(listSep)))}</p>`);
  if (result.ignored_columns?.length) lines.push(`<p class="muted">${escapeHtml(t.ignored(result.ignored_columns.join(listSep)))}</p>`);
  return lines.join("");
}

// An import's row problems (api/services/household_files.py, households.py) said in Chinese on
// the Chinese page: the common ones; a rarer one (a date Excel made of a room, a landline's lost
// 0) is shown as the server wrote it, which names the fix.
const zhColumn = (name) => TEXT.zh.columns[name] || name;
const ROW_PROBLEMS_ZH = [
  [/^(\w+) is required$/, (c) => `${zhColumn(c)}必填。`],
  [/^(\w+) is longer than (\d+) characters$/, (c, n) => `${zhColumn(c)}超过 ${n} 个字符。`],
  [/^(\w+) '(.*)' is not a number$/, (c, v) => `${zhColumn(c)}“${v}”不是数字。`],
  [/^kind '(.*)' is not one of .*$/, (v) => `类型“${v}”无法识别：应为 住宅 或 商铺。`],
  [/^occupancy '(.*)' is not one of .*$/, (v) => `居住性质“${v}”无法识别：应为 自住、租住 或 空置。`],
  [/^members '(.*)' is not a whole number 0-100$/, (v) => `人数“${v}”须为 0 至 100 的整数。`],
  [/^A vacant household has no members: .*$/, () => "空置住户的人数应为 0：请填 0，或改选其他居住性质。"],
  [/^unknown care tag '(.*)'$/, (v) => `标签“${v}”无法识别：应为 ${Object.values(CARE_TAGS).map(([zh]) => zh).join("、")} 之一。`],
  [/^phone '(.*)' is a number Excel shortened, its digits lost:.*$/, (v) => `电话“${v}”被 Excel 显示成了科学计数法，位数已丢失：请把电话列设为“文本”格式后重新输入（或改用 XLSX 导入）。`],
  [/^phone '(.*)' looks like a landline whose leading 0 a spreadsheet dropped:.*$/, (v) => `电话“${v}”像是被表格软件去掉了开头 0 的固话：请把电话列设为“文本”格式，连同区号填写，如“0${v}”（或改用 XLSX 导入）；境外号码请写 + 和国家代码。`],
  [/^(\w+) '(.*)' is a date or number a spreadsheet made of what was typed.*$/, (c, v) => `${zhColumn(c)}“${v}”被表格软件当成了日期或数字：请把该列设为“文本”格式后重新输入。`],
  [/^(\w+) is a date in the workbook \((.*)\); Excel turned what was typed into a date.*$/, (c, v) => `${zhColumn(c)}在工作簿中是日期（${v}）：Excel 把输入的内容当成了日期，请把该列设为“文本”格式后重新输入。`],
  [/^(\w+) holds a control character or a bidirectional override$/, (c) => `${zhColumn(c)}含有不能保存的控制字符。`],
  [/^The point lies outside every grid; the nearest is (\d+), (\d+) m away\.$/, (code, m) => `该点不在任何网格内：最近的网格是 ${code}，相距 ${m} 米。请核对经纬度。`],
  [/^repeats row (\d+): the same address at the same point$/, (r) => `与第 ${r} 行重复：同一地址、同一位置。`],
  [/^the same address at the same point is already registered as household (\d+)$/, (id) => `同一地址、同一位置已登记为住户 ${id}（按文件更新请选“按文件更新已登记住户”）。`],
  [/^the same address at the same point is already registered, in a grid outside yours$/, () => "同一地址、同一位置已登记在您负责范围以外的网格中。"],
  // The update mode's (按文件更新): a file exported before a household left, a row copied twice.
  [/^the same address at the same point is household (\d+), which left the register: .*$/, (id) =>
    `同一地址、同一位置的住户 ${id} 已移出登记册：请删去此行，或先恢复该住户，或以“新增住户”方式登记新住户。`],
  [/^the same address at the same point is a household of a grid outside yours, which left the register: .*$/, () =>
    "同一地址、同一位置的住户（在您负责范围以外的网格中）已移出登记册：请删去此行，或以“新增住户”方式登记新住户。"],
  [/^repeats row (\d+): the same address within (\d+) m$/, (r, m) => `与第 ${r} 行重复：同一地址，相距不到 ${m} 米。`],
  [/^matches household (\d+), as row (\d+) does$/, (id, r) => `与第 ${r} 行是同一住户（${id}）：每户只能有一行。`],
  [/^the same address within (\d+) m is a registered household you may not edit; .*$/, (m) =>
    `${m} 米内已登记同一地址的住户，在您负责范围以外：该住户不变，也不会在旁边另登记一户。`],
];
// A form's own refusals: its point outside every grid (422), its address registered there (409).
const { fieldMessage, showErrors } = fieldWords(lang, [
  ...ROW_PROBLEMS_ZH,
  [/^This address is already registered at this point as household (\d+)\.$/, (id) => `该地址在此位置已登记为住户 ${id}。`],
  [/^This address is already registered at this point, in a grid outside yours;.*$/, () => "该地址在此位置已登记，在您负责范围以外的网格中。"],
  // A removal's day refused (api/services/household_removal.py), said beside 移出日期.
  [/^(\S+) is in the future \(today is (\S+)\)\.$/, (day, today) => `${day} 晚于今天（${today}）：移出日期不能是将来的日子。`],
  [/^(\S+) is before the household was registered \((\S+)\)\.$/, (day, since) => `${day} 早于该住户的登记日期（${since}）。`],
  [/^(\S+) is before its grid, kind or care tags last changed \((\S+)\); .*$/, (day, since) =>
    `${day} 早于该住户的网格、类型或标签最近一次变更（${since}）：移出日期不能早于该日。`],
  [/^(\S+) is before its last visit \((\S+)\); .*$/, (day, visit) =>
    `${day} 早于该住户最近一次走访（${visit}）：移出日期不能早于已记录的走访。`],
  // A restore refused (409): its address registered again at its point (above), and these.
  [/^Household \d+ is in the register; nothing to undo\.$/, () => "该住户已在登记册中（可能已由他人恢复），无需恢复。"],
  [/^Household \d+'s grid (\d+) was retired since it left; .*$/, (code) =>
    `该住户移出后，其所在网格 ${code} 已撤销，不能恢复：请在现在管辖该门牌的网格中重新登记。`],
  [/^Household \d+'s phone and care tags were erased on (\S+), .*$/, (day) =>
    `该住户的电话和关怀标签已于 ${day} 按保存期限删除，不能恢复：请重新登记。`],
]);

const rowProblem = wordsFor(lang, ROW_PROBLEMS_ZH);

/** A refused import: its rows' problems as a table (row, column, what), or the file's one problem. */
function refusedHtml(error) {
  const problems = Array.isArray(error.body?.errors) ? error.body.errors : [];
  if (!problems.length) return `<p class="error">${escapeHtml(t.importRefused + error.message)}</p>`;
  const column = (name) => (name ? (lang === "zh" ? zhColumn(name) : name) : "");
  const rows = problems.map((p) =>
    `<tr><td>${p.row}</td><td>${escapeHtml(column(p.column))}</td><td>${escapeHtml(rowProblem(p.detail))}</td></tr>`).join("");
  const more = problems.length >= 100 ? ` ${t.moreProblems(problems.length)}` : "";
  return `<p class="error">${escapeHtml(t.importRefused)}${escapeHtml(more)}</p>
    <table class="problems"><thead><tr>${t.rowsHead.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table>`;
}

importForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = importForm.elements.file.files[0];
  if (!file) {
    importOutcome(`<p class="error">${t.chooseFile}</p>`);
    return;
  }
  const mode = importForm.elements.mode.value;
  const button = importForm.querySelector("button[type=submit]");
  button.disabled = true;
  importOutcome(`<p class="muted">${t.importing}</p>`);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    // The same file sent again after a lost answer goes with the same key: imported once.
    const result = await apiOnce(`/api/v1/households/import?mode=${mode}`, {
      method: "POST", body: form, once: `${file.name}\n${file.size}\n${file.lastModified}`,
    });
    importOutcome(importedHtml(result));
    state.page = 1;
    await loadHouseholds();
  } catch (error) {
    importOutcome(error instanceof ApiError && error.status ? refusedHtml(error) : `<p class="error">${escapeHtml(t.failed + error.message)}</p>`);
  } finally {
    button.disabled = false;
  }
});

for (const button of [$("#export-xlsx"), $("#export-csv")]) {
  button.addEventListener("click", async () => {
    const format = button.dataset.format;
    const grid = $("#filter-grid").value;
    const query = new URLSearchParams({ format });
    if (grid) query.set("grid", grid);
    const status = $("#export-status");
    status.textContent = t.exporting;
    button.disabled = true;
    try {
      const name = `${lang === "zh" ? "住户登记册" : "households"}-${grid || state.me.community_code || "grids"}-${todayLocal()}.${format}`;
      saveBlob(await apiBlob(`/api/v1/households/export?${query}`), name);
      status.textContent = "";
    } catch (error) {
      status.textContent = t.exportFailed + error.message;
    } finally {
      button.disabled = false;
    }
  });
}

// --- the page -----------------------------------------------------------------------------------
async function loadGrids() {
  try {
    const features = await apiPages("/api/v1/grids", { pick: (body) => body?.features || [] });
    state.grids = features.map((f) => ({ id: f.id, code: f.properties.code, name: f.properties.name }))
      .sort((a, b) => a.code.localeCompare(b.code));
  } catch { /* grid names are a help: codes are shown without them */ }
  $("#filter-grid").insertAdjacentHTML("beforeend", state.grids.map((g) =>
    `<option value="${escapeHtml(g.code)}">${escapeHtml(g.name ? `${g.name} ${g.code}` : g.code)}</option>`).join(""));
  $("#filter-tag").insertAdjacentHTML("beforeend", Object.keys(CARE_TAGS).map((tag) =>
    `<option value="${tag}">${escapeHtml(tagName(tag))}</option>`).join(""));
}

/** `?household=ID` (a notice's link: 住户可能已搬离): that household's removal asked at once. */
async function openLinked() {
  const id = Number(new URLSearchParams(location.search).get("household"));
  if (!Number.isInteger(id) || id <= 0 || !state.editor) return;
  try {
    const h = await api(`/api/v1/households/${id}`);
    state.rows.set(h.id, h);
    if (h.removal) openRestore(h);
    else openRemoval(h);
  } catch (error) {
    say(t.failed + error.message, true);
  }
}

async function start() {
  const me = await openPage({ lang, t, fail: (error) => say(t.failed + error.message, true) });
  if (!me) return;
  state.me = me;
  $("#who").textContent = `${me.display_name || me.username} · ${t[`role_${me.role}`] || me.role}`;
  $("#to-accounts").hidden = !EDITORS.includes(me.role);
  $("#to-rosters").hidden = me.role === "district_viewer";
  $("#to-reports").hidden = me.role === "worker";
  $("#to-app").hidden = me.role === "district_viewer";
  $("#to-audit").hidden = !AUDITORS.includes(me.role);
  if (me.role === "worker") {
    $("#notice").textContent = t.notForYou;
    $("#notice").hidden = false;
    return;
  }
  state.editor = EDITORS.includes(me.role);
  state.auditor = AUDITORS.includes(me.role);
  if (!state.editor) {
    $("#notice").textContent = t.viewerReadOnly;
    $("#notice").hidden = false;
    // The actions' column stays: a viewer's rows link to the household's audit history.
    if (!state.auditor) document.body.classList.add("read-only");
  }
  $(".files").hidden = !state.editor; // a viewer imports nothing and may not export
  $("#new-household").hidden = !state.editor;
  $("#register-section").hidden = false;
  await loadGrids();
  await loadHouseholds();
  await openLinked();
  document.body.dataset.ready = "1";
}

for (const id of ["#filter-grid", "#filter-tag", "#filter-kind", "#filter-status"]) {
  $(id).addEventListener("change", () => {
    state.page = 1;
    loadHouseholds();
  });
}
$("#new-household").addEventListener("click", () => openNew());
// The address looked up as it is typed, once the typing pauses.
$("#filter-address").placeholder = t.addressPlaceholder;
let typing = null;
$("#filter-address").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { state.page = 1; loadHouseholds(); }, 300);
});
$("#prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); loadHouseholds(); });
$("#next").addEventListener("click", () => { state.page += 1; loadHouseholds(); });

bootPage({ lang, t, start });
