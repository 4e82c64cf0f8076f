// The community office's accounts page: list, open, edit (a role too), switch off / on and reset accounts.
//
// A community admin manages their community's accounts (/api/v1/users); a grid leader reads
// the accounts of their grids; anyone else is told the page is the community office's.
import {
  ApiError, api, apiOnce, apiPage, apiPages, escapeHtml, getToken, otherLangHref, pageWords, signOut,
} from "./common.js";
import { clearErrors, fieldWords } from "./forms.js";
import { wireSignIn } from "./password.js";
import { keepFresh } from "./session.js";

// Accounts a page: 50, or `?page_size=` (1 to 200) for a longer or shorter list.
const PAGE_SIZE = Math.min(Math.max(Math.trunc(Number(new URLSearchParams(location.search).get("page_size"))) || 50, 1), 200);
const GRID_ROLES = ["worker", "grid_leader"]; // api/services/accounts.py GRID_ROLES
const MANAGED_ROLES = ["worker", "grid_leader", "community_admin"]; // api/services/accounts.py MANAGED_ROLES

const TEXT = {
  zh: {
    title: "账号管理", username: "用户名", password: "密码", signIn: "登录", signOut: "退出",
    other: "English", toMap: "← 网格地图", toReports: "走访覆盖周报", toRosters: "排班", toRegister: "住户登记册", toAudit: "审计日志", badLogin: "用户名或密码错误",
    role: "角色", allRoles: "全部角色", state: "状态", allStates: "全部", active: "在用", switchedOff: "已停用",
    grid: "网格", allGrids: "全部网格",
    role_worker: "网格员", role_grid_leader: "网格长", role_community_admin: "社区管理员",
    role_district_viewer: "街道/区级查看",
    name: "姓名", phone: "电话", gridsHeld: "负责网格", gridsLed: "带领网格", actions: "操作",
    openAccount: "开设账号", edit: "编辑", switchOff: "停用", switchOn: "重新启用", resetPassword: "重置密码",
    save: "保存", cancel: "取消", prev: "上一页", next: "下一页", newPassword: "新密码", you: "（本人）",
    pageInfo: (page, pages, total) => `第 ${page}/${pages} 页 · 共 ${total} 个账号`,
    noAccounts: "没有符合条件的账号。", loading: "正在读取…",
    notForYou: "账号由社区办公室（社区管理员）管理，此页面不对您开放。",
    leaderReadOnly: "账号由社区办公室（社区管理员）管理；这里是您所带网格的账号，只读。",
    openTitle: "开设账号", editTitle: (n) => `编辑账号：${n}`,
    gridHintWorker: "网格员负责所选网格。", gridHintLeader: "网格长开设时带领所选网格（之后在其“编辑”的“带领网格”中设置）。",
    gridHintLeaderEdit: "网格长负责所选网格；其带领的网格在下方“带领网格”中勾选。",
    ledHint: "此人带领所勾选的网格。勾选他人带领的网格，即由此人接任该网格的网格长。",
    ledBy: (n) => `现由${n}带领`, noLeader: "暂无网格长",
    ledWarning: (grids) => `取消勾选后，网格 ${grids} 将没有网格长，直到另行指定。`,
    ledFailed: "以下网格的网格长未能修改（其余修改已保存）：", gridGone: "该网格已不在服务中。",
    gridHintAdmin: "社区管理员不负责网格。", noGrids: "社区暂无网格。",
    opened: (n) => `已开设账号 ${n}。`, saved: (n) => `已保存 ${n} 的修改。`,
    offTitle: (n) => `停用 ${n} 的账号？`,
    offText: [
      "此人将无法再登录，所有设备上的登录立即结束；",
      "其日历订阅链接失效，不再向其手机推送消息；",
      "其手中未办结的任务立即转给今日派单选中的人（无人可派时待分派，并通知上级）；",
      "排班中此后仍有的班次会列出，请重新排班。",
    ],
    offDone: (n) => `${n} 的账号已停用。`,
    leftList: (n) => `${n} 已不在“在用”列表中：状态选“已停用”或“全部”可找到该账号，并可在那里重新启用。`,
    handedOn: "已转交的任务", noTasks: "此人手中没有未办结的任务。", task: "任务",
    waiting: "待分派（无人接手）", shiftsAhead: "排班中仍有的班次（请重新排班）", noShifts: "此后没有排班。",
    movedTitle: (n) => `${n} 已调整网格`, oldGridShifts: "排班中仍派往原网格的B岗日期（请重新排班）",
    onTitle: (n) => `重新启用 ${n} 的账号？`,
    onText: ["请为其设置新密码并当面告知：原密码在停用期间可能已被他人试出，不再有效；", "此人用新密码登录后须先设置自己的密码；停用时结束的登录不会恢复。"],
    onDone: (n) => `${n} 的账号已重新启用：请将新密码告知本人，其登录后须先设置自己的密码；之前的登录不再恢复。`,
    backInList: (n) => `${n} 已回到“在用”列表。`,
    roleTitle: (n, from, to) => `将 ${n} 的角色由“${from}”改为“${to}”？`,
    roleText: ["此人所有设备上的登录立即结束，重新登录后以新角色使用。"],
    roleTextAdmin: [
      "社区管理员不负责网格：此人不再负责原有网格；",
      "其手中未办结的任务立即转给今日派单选中的人（无人可派时待分派，并通知上级）；",
      "排班中此后仍有的班次会列出，请重新排班。",
    ],
    changeRole: "修改角色",
    roleDone: (n, role) => `${n} 的角色已改为“${role}”，其原有登录已全部结束。`,
    stillLeads: (n, grids) => `${n} 仍是网格 ${grids} 的网格长：须先为这些网格指定新的网格长——在接任网格长的账号“编辑”中，于“带领网格”勾选这些网格（或保留其角色，在其“带领网格”中取消勾选，网格暂无网格长），然后才能修改其角色。`,
    roleNotChanged: "角色未修改。", serverSaid: "服务器答复：",
    pwTitle: (n) => `重置 ${n} 的密码？`,
    pwText: ["此人所有设备上的登录、日历订阅链接和手机推送全部结束；", "此人之后用您设置的新密码登录。"],
    pwDone: (n) => `已为 ${n} 设置新密码，其原有登录已全部结束。`,
    failed: "操作失败：",
  },
  en: {
    title: "Accounts", username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out",
    other: "中文", toMap: "← Grid map", toReports: "Weekly report", toRosters: "Rosters", toRegister: "Resident register", toAudit: "Audit log", badLogin: "Wrong username or password",
    role: "Role", allRoles: "All roles", state: "State", allStates: "All", active: "Active",
    switchedOff: "Switched off", grid: "Grid", allGrids: "All grids",
    role_worker: "Grid worker", role_grid_leader: "Grid leader", role_community_admin: "Community admin",
    role_district_viewer: "District viewer",
    name: "Name", phone: "Phone", gridsHeld: "Grids held", gridsLed: "Grids led", actions: "Actions",
    openAccount: "Open an account", edit: "Edit", switchOff: "Switch off", switchOn: "Switch on again",
    resetPassword: "Reset password", save: "Save", cancel: "Cancel", prev: "Previous", next: "Next",
    newPassword: "New password", you: " (you)",
    pageInfo: (page, pages, total) => `Page ${page} of ${pages} · ${total} accounts`,
    noAccounts: "No accounts match.", loading: "Loading…",
    notForYou: "Only the community office (community admins) manages accounts: this page is not for you.",
    leaderReadOnly: "Only the community office (community admins) manages accounts; here are your grids' accounts, read only.",
    openTitle: "Open an account", editTitle: (n) => `Edit account: ${n}`,
    gridHintWorker: "A grid worker holds the grids ticked.",
    gridHintLeader: "A grid leader opened with grids leads them (later, under \"Grids led\" in their Edit form).",
    gridHintLeaderEdit: "A grid leader holds the grids ticked; the grids they lead are ticked under \"Grids led\" below.",
    ledHint: "They lead the grids ticked. Ticking a grid another leads makes them its leader instead.",
    ledBy: (n) => `led by ${n}`, noLeader: "no leader",
    ledWarning: (grids) => `Unticked, grid(s) ${grids} will be left without a leader until another is named.`,
    ledFailed: "These grids' leader was not changed (the other changes are saved):",
    gridGone: "The grid is no longer in service.",
    gridHintAdmin: "A community admin holds no grids.", noGrids: "The community has no grids yet.",
    opened: (n) => `Account ${n} opened.`, saved: (n) => `${n}: changes saved.`,
    offTitle: (n) => `Switch off ${n}'s account?`,
    offText: [
      "They can no longer sign in; their sign-ins on every device end now.",
      "Their calendar link stops working and nothing more is pushed to their phones.",
      "The open tasks they hold are handed on now to whom dispatch picks today (or wait unassigned, their overseers told).",
      "The shift days a roster still gives them are listed, to re-roster.",
    ],
    offDone: (n) => `${n}'s account is switched off.`,
    leftList: (n) => `${n} is no longer in the Active list: choose State "Switched off" or "All" to find the account (and to switch it on again).`,
    handedOn: "Tasks handed on", noTasks: "They held no open tasks.", task: "Task",
    waiting: "waiting unassigned", shiftsAhead: "Shift days still rostered (re-roster them)",
    noShifts: "No shifts rostered ahead.",
    movedTitle: (n) => `${n}: grids changed`, oldGridShifts: "B-post days still rostered in a grid they left (re-roster them)",
    onTitle: (n) => `Switch ${n}'s account on again?`,
    onText: ["Set a new password and hand it to them in person: the old one may have been guessed while the account was off, and no longer opens it.", "They sign in with the new password, then set their own first; the sign-ins ended when it was switched off stay ended."],
    onDone: (n) => `${n}'s account is on again: hand them the new password; they set their own at the first sign-in. Earlier sign-ins stay ended.`,
    backInList: (n) => `${n} is back in the Active list.`,
    roleTitle: (n, from, to) => `Change ${n}'s role from ${from} to ${to}?`,
    roleText: ["Their sign-ins on every device end now; they sign in again and carry the new role."],
    roleTextAdmin: [
      "A community admin holds no grids: they let go of the grids they hold.",
      "The open tasks they hold are handed on now to whom dispatch picks today (or wait unassigned, their overseers told).",
      "The shift days a roster still gives them are listed, to re-roster.",
    ],
    changeRole: "Change the role",
    roleDone: (n, role) => `${n} is now a ${role}; their sign-ins have ended.`,
    stillLeads: (n, grids) => `${n} still leads grid(s) ${grids}: name the grids' new leader first (in the new leader's Edit form, tick them under "Grids led"; or, keeping ${n}'s role, untick them under their "Grids led" to leave them without a leader), then change the role.`,
    roleNotChanged: "The role was not changed.", serverSaid: "The server said: ",
    pwTitle: (n) => `Reset ${n}'s password?`,
    pwText: [
      "Their sign-ins on every device, their calendar link and phone pushes all end.",
      "They then sign in with the new password you set.",
    ],
    pwDone: (n) => `A new password is set for ${n}; their sign-ins have ended.`,
    failed: "It failed: ",
  },
};
const { lang, t } = pageWords(TEXT);

const $ = (selector, root = document) => root.querySelector(selector);
const roleName = (role) => t[`role_${role}`] || role;
const state = {
  me: null,
  admin: false,
  grids: [], // the community's grids in service: [{id, code, name, leader_id}]
  gridNames: new Map(),
  names: new Map(), // user id -> what to call them
  page: 1,
  rows: new Map(), // the accounts shown, by id
  listAsked: 0, // lists asked for so far: only the last one asked is shown
};

const label = (user) => user.display_name || user.username;

function show(el, on = true) {
  el.hidden = !on;
}

function say(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
  show(el, Boolean(text));
}

/** Grids named in a sentence: "name (code)", or the code alone when its name is unknown. */
function gridsInText(codes) {
  return codes.map((code) => {
    const name = state.gridNames.get(code);
    return name ? `${name} (${code})` : code;
  }).join(lang === "zh" ? "、" : ", ");
}

function gridList(codes) {
  return (codes || []).map((code) => {
    const name = state.gridNames.get(code);
    return `<span class="grid" title="${escapeHtml(code)}">${name ? `${escapeHtml(name)} ` : ""}<small>${escapeHtml(code)}</small></span>`;
  }).join("") || `<span class="muted">—</span>`;
}

function rowHtml(user) {
  const own = state.me && user.id === state.me.id;
  let actions = "";
  if (state.admin) {
    actions = `<button type="button" data-action="edit">${t.edit}</button>`;
    if (!own) {
      // A fellow admin's password is the district's to set: reset, or given switching the
      // account on again (`gridwork user switch-on`; the server refuses either).
      const fellowAdmin = user.role === "community_admin";
      if (user.active) {
        actions += `<button type="button" data-action="switch-off" class="danger">${t.switchOff}</button>`;
      } else if (!fellowAdmin) {
        actions += `<button type="button" data-action="switch-on">${t.switchOn}</button>`;
      }
      if (!fellowAdmin) {
        actions += `<button type="button" data-action="reset-password">${t.resetPassword}</button>`;
      }
    }
  }
  return `<tr data-id="${escapeHtml(user.id)}" data-username="${escapeHtml(user.username)}" class="${user.active ? "" : "off"}">
    <td class="username">${escapeHtml(user.username)}${own ? `<span class="muted">${t.you}</span>` : ""}</td>
    <td class="name" data-label="${escapeHtml(t.name)}">${escapeHtml(user.display_name)}</td>
    <td class="role" data-label="${escapeHtml(t.role)}">${escapeHtml(roleName(user.role))}</td>
    <td class="grids" data-label="${escapeHtml(t.gridsHeld)}">${gridList(user.grid_codes)}</td>
    <td class="led" data-label="${escapeHtml(t.gridsLed)}">${gridList(user.led_grid_codes)}</td>
    <td class="state" data-label="${escapeHtml(t.state)}">${user.active ? t.active : `<b>${t.switchedOff}</b>`}</td>
    <td class="actions">${actions}</td></tr>`;
}

/** The page of accounts asked for, with the filters chosen (server-side), and the pager. */
async function loadAccounts() {
  const query = new URLSearchParams();
  const role = $("#filter-role").value;
  const grid = $("#filter-grid").value;
  const active = $("#filter-active").value;
  if (role) query.set("role", role);
  if (grid) query.set("grid", grid);
  if (active) query.set("active", active);
  const body = $("#accounts tbody");
  body.innerHTML = `<tr><td colspan="7" class="muted">${t.loading}</td></tr>`;
  // Filters changed or pages turned again before the answer: an earlier list answered late
  // is dropped, not shown under the filters and page asked for since.
  const asked = ++state.listAsked;
  try {
    const { items, pagination } = await apiPage(`/api/v1/users${String(query) ? `?${query}` : ""}`, { page: state.page, pageSize: PAGE_SIZE });
    if (asked !== state.listAsked) return;
    if (!items.length && state.page > 1) {
      // The last page emptied (its last account switched off under "active only"): the one before.
      state.page = Math.max(1, Math.min(state.page - 1, pagination?.total_pages || 1));
      return loadAccounts();
    }
    state.rows = new Map(items.map((user) => [user.id, user]));
    for (const user of items) state.names.set(user.id, label(user));
    body.innerHTML = items.map(rowHtml).join("") || `<tr><td colspan="7" class="muted">${t.noAccounts}</td></tr>`;
    const total = pagination?.total ?? items.length;
    const pages = Math.max(1, pagination?.total_pages ?? 1);
    $("#page-info").textContent = t.pageInfo(state.page, pages, total);
    $("#prev").disabled = !pagination?.previous_page;
    $("#next").disabled = !pagination?.next_page;
  } catch (error) {
    if (asked !== state.listAsked) return;
    body.innerHTML = `<tr><td colspan="7" class="error">${escapeHtml(error.message)}</td></tr>`;
  }
}

// --- errors next to the fields they name --------------------------------------------------------
// The users API's own refusals (api/services/users.py), beside marshmallow's (forms.js): its
// rules, and the 409 of a username taken (said beside it).
const USER_MESSAGES_ZH = [
  [/^Must not contain spaces or invisible characters\.$/, () => "不能含有空格或不可见字符。"],
  [/^Too short \(spaces do not count\)\.$/, () => "至少 8 个字符（空格不计）。"],
  [/^User '(.*)' already exists\.$/, (name) => `用户名 ${name} 已被占用，请换一个。`],
  [/^User '(.*)' reads as the existing '(.*)'; choose another username\.$/,
    (name, taken) => `用户名 ${name} 与已有的 ${taken} 视为同一个，请换一个。`],
];
const { fieldErrors, showErrors } = fieldWords(lang, USER_MESSAGES_ZH);

// --- opening and editing an account -------------------------------------------------------------
const accountDialog = $("#account-dialog");
const accountForm = $("#account-form");
let editing = null; // the account edited, or null when opening one

function gridOptions(held) {
  const offered = [...state.grids];
  for (const code of held) if (!offered.some((g) => g.code === code)) offered.push({ code, name: "" });
  $("#grid-options").innerHTML = offered.map((g) =>
    `<label class="grid-option"><input type="checkbox" name="grid_codes" value="${escapeHtml(g.code)}"${held.includes(g.code) ? " checked" : ""}>
      ${escapeHtml(g.name)} <small>${escapeHtml(g.code)}</small></label>`).join("") || `<p class="muted">${t.noGrids}</p>`;
}

/** Whether the form offers a role: when opening an account, and when editing another's of the
 * community's roles (one's own role is another admin's to change, a fellow admin's the
 * district's: the server refuses both). */
function roleOffered(user) {
  return !user || (user.id !== state.me?.id && MANAGED_ROLES.includes(user.role) && user.role !== "community_admin");
}

/** The role the form gives the account: the one chosen, or its own when none is offered. */
function chosenRole() {
  return roleOffered(editing) ? accountForm.elements.role.value : editing.role;
}

function gridHint() {
  const role = chosenRole();
  const holds = GRID_ROLES.includes(role);
  show($("#grid-options"), holds);
  const leaderHint = editing ? t.gridHintLeaderEdit : t.gridHintLeader;
  $("#grid-hint").textContent = role === "worker" ? t.gridHintWorker : role === "grid_leader" ? leaderHint : t.gridHintAdmin;
  // "Grids led" is offered to an account kept or made a grid leader only: the server refuses a
  // leader another role while it leads, so leading and a role away from it never go together.
  show($("#led-choice"), Boolean(editing) && role === "grid_leader");
  ledWarning();
  // A leader still leading grids keeps the role until the grids have another leader: said
  // before saving (the server refuses it, and its answer is shown then too).
  const led = editing?.led_grid_codes || [];
  const refused = Boolean(editing) && role !== editing.role && role !== "grid_leader" && led.length > 0;
  $("#role-hint").textContent = refused ? t.stillLeads(label(editing), gridsInText(led)) : "";
  show($("#role-hint"), refused);
}

// --- the grids an account leads ("grids led"): each a PATCH of the grid's leader_id ------------
/** The "grids led" list of `user`: the community's grids, ticked for those it leads, each
 * naming its leader when another account leads it (ticking it takes it from them). */
function ledOptions(user) {
  const led = user?.led_grid_codes || [];
  const offered = [...state.grids];
  for (const code of led) if (!offered.some((g) => g.code === code)) offered.push({ code, name: "", leader_id: user.id });
  const note = (g) => {
    if (g.leader_id == null) return `<span class="leader none">${t.noLeader}</span>`;
    if (g.leader_id === user?.id) return "";
    const id = escapeHtml(g.leader_id);
    return `<span class="leader other" data-leader="${id}">${escapeHtml(t.ledBy(state.names.get(g.leader_id) || `#${g.leader_id}`))}</span>`;
  };
  $("#led-options").innerHTML = offered.map((g) =>
    `<label class="grid-option led-option" data-code="${escapeHtml(g.code)}"><input type="checkbox" name="led_codes" value="${escapeHtml(g.code)}"${led.includes(g.code) ? " checked" : ""}>
      ${escapeHtml(g.name)} <small>${escapeHtml(g.code)}</small> ${note(g)}</label>`).join("") || `<p class="muted">${t.noGrids}</p>`;
  // Leaders not among the accounts listed are looked up, and named once known.
  const unknown = new Set(offered.map((g) => g.leader_id).filter((id) => id != null && id !== user?.id && !state.names.has(id)));
  for (const id of unknown) {
    nameOf(id).then((name) => {
      for (const el of document.querySelectorAll(`#led-options .leader[data-leader="${CSS.escape(String(id))}"]`)) el.textContent = t.ledBy(name);
    });
  }
}

function tickedLed() {
  return [...accountForm.querySelectorAll("input[name=led_codes]:checked")].map((i) => i.value);
}

/** The leader changes the form asks for: [{code, leader_id}], the account named leader of the
 * grids newly ticked and null for those unticked. None unless the account is (made) a leader. */
function ledChanges() {
  if (!editing || chosenRole() !== "grid_leader") return [];
  const led = editing.led_grid_codes || [];
  const ticked = tickedLed();
  return [
    ...ticked.filter((code) => !led.includes(code)).map((code) => ({ code, leader_id: editing.id })),
    ...led.filter((code) => !ticked.includes(code)).map((code) => ({ code, leader_id: null })),
  ];
}

/** Said before saving: the grids unticked are left without a leader. */
function ledWarning() {
  const left = ledChanges().filter((c) => c.leader_id === null).map((c) => c.code);
  $("#led-warning").textContent = left.length ? t.ledWarning(gridsInText(left)) : "";
  show($("#led-warning"), left.length > 0);
}

/** A problem's words: its `detail`, then what its `errors` add. */
function problemText(error) {
  const more = Object.entries(fieldErrors(error.body))
    .filter(([, message]) => !error.message.includes(message))
    .map(([field, message]) => `${field}: ${message}`);
  return [error.message, ...more].join(" — ");
}

/** PATCH each grid's leader as `changes` ask, one after the other; the ones refused, with why. */
async function saveLed(changes) {
  const failed = [];
  for (const change of changes) {
    const grid = state.grids.find((g) => g.code === change.code);
    try {
      if (!grid) throw new Error(t.gridGone);
      await api(`/api/v1/grids/${grid.id}`, { method: "PATCH", body: { leader_id: change.leader_id } });
    } catch (error) {
      failed.push({ ...change, why: error.status ? problemText(error) : error.message });
    }
  }
  return failed;
}

/**
 * After `user` was saved and its `led` changes sent: the grids and the list read again, so
 * "grids led" shows what the server holds. All went through: the form closes. Some grid
 * refused: the form stays, redrawn from the account as it now is, each refusal named.
 */
async function afterSave(user, led, failed) {
  if (led.length) await fetchGrids();
  await loadAccounts();
  if (!failed.length) {
    accountDialog.close();
    return;
  }
  let fresh = state.rows.get(user.id) || user;
  try {
    fresh = await api(`/api/v1/users/${user.id}`);
  } catch { /* the account as the PATCH answered */ }
  openForm(fresh);
  const list = $("#led-errors");
  list.innerHTML = `<li class="head">${escapeHtml(t.ledFailed)}</li>${failed.map((f) =>
    `<li data-code="${escapeHtml(f.code)}">${escapeHtml(gridsInText([f.code]))}: ${escapeHtml(f.why)}</li>`).join("")}`;
  show(list);
}

function openForm(user = null) {
  editing = user;
  accountForm.reset();
  clearErrors(accountForm);
  $("#account-form-title").textContent = user ? t.editTitle(label(user)) : t.openTitle;
  show($(".create-only", accountForm), !user);
  show($("#role-part"), roleOffered(user));
  if (user && roleOffered(user)) accountForm.elements.role.value = user.role;
  accountForm.elements.display_name.value = user?.display_name || "";
  accountForm.elements.phone.value = user?.phone || "";
  gridOptions(user?.grid_codes || []);
  if (user) ledOptions(user);
  gridHint();
  if (!accountDialog.open) accountDialog.showModal();
  (user ? accountForm.elements.display_name : accountForm.elements.username).focus();
}

function checkedGrids() {
  return [...accountForm.querySelectorAll("input[name=grid_codes]:checked")].map((i) => i.value);
}

function formBody() {
  const f = accountForm.elements;
  const name = f.display_name.value.trim();
  const phone = f.phone.value.trim();
  if (!editing) {
    const body = { username: f.username.value.trim(), password: f.password.value, role: f.role.value };
    if (name) body.display_name = name;
    if (phone) body.phone = phone;
    if (GRID_ROLES.includes(body.role)) body.grid_codes = checkedGrids();
    return body;
  }
  // Only what changed: a PATCH of an unchanged field would still be an entry in the audit log.
  const body = {};
  const role = chosenRole();
  if (role !== editing.role) body.role = role;
  if (name !== (editing.display_name || "")) body.display_name = name;
  if (phone !== (editing.phone || "")) body.phone = phone || null;
  // The server changes the role first, then the grids: an account made a worker or leader may
  // be given grids at once; one made an admin lets go of its grids (none is sent).
  if (GRID_ROLES.includes(role)) {
    const grids = checkedGrids();
    const before = [...(editing.grid_codes || [])].sort().join();
    if ([...grids].sort().join() !== before) body.grid_codes = grids;
  }
  return body;
}

accountForm.elements.role.addEventListener("change", gridHint);
$("#led-options").addEventListener("change", ledWarning);
accountForm.querySelector("button.cancel").addEventListener("click", () => accountDialog.close());
accountForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(accountForm);
  const body = formBody();
  const led = ledChanges();
  if (editing && !Object.keys(body).length && !led.length) {
    accountDialog.close();
    return;
  }
  if (editing && body.role) {
    changeRole(editing, body, led);
    return;
  }
  const submit = accountForm.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    if (editing) {
      // The account first (a refusal of it changes no grid), then the grids it leads.
      const user = Object.keys(body).length ? await api(`/api/v1/users/${editing.id}`, { method: "PATCH", body }) : editing;
      const failed = await saveLed(led);
      say(t.saved(label(user)));
      $("#outcome").hidden = true;
      if ((user.shifts_ahead || []).length) showOldGridShifts(user);
      await afterSave(user, led, failed);
    } else {
      // With a key kept until answered: pressed again after a lost answer, the first account.
      await opened(await apiOnce("/api/v1/users", { method: "POST", body }));
    }
  } catch (error) {
    // No answer: the account may be opened all the same, and pressed again it was refused as
    // a username taken (the admin then opened the worker twice, under another name).
    const found = !editing && !(error instanceof ApiError) ? await openedMeanwhile(body.username) : null;
    if (found) await opened(found);
    else showErrors(accountForm, error, body, editing ? null : "username");
  } finally {
    submit.disabled = false;
  }
});

async function opened(user) {
  say(t.opened(`${user.username}${user.display_name ? ` (${user.display_name})` : ""}`));
  accountDialog.close();
  $("#outcome").hidden = true;
  // A grid leader opened with grids leads them: the grids' leaders are read again, or
  // another leader's form offers them as leaderless (ticked there, taken unwarned).
  if ((user.led_grid_codes || []).length) await fetchGrids();
  await loadAccounts();
}

/** The community's account `username`, if the server has it (read after a lost answer). */
async function openedMeanwhile(username) {
  try {
    return (await apiPages("/api/v1/users")).find((user) => user.username === username) || null;
  } catch {
    return null;
  }
}

// --- switching off and on, resetting a password ------------------------------------------------
const confirmDialog = $("#confirm-dialog");
const confirmForm = $("#confirm-form");
let confirmed = null; // what the confirm button does
let conflictSaid = null; // what a 409 of it means, said above the server's detail (or null)

/**
 * Ask before `action`: `password` asks for a new password too; `danger: false` for what is
 * not destructive (a lighter button); `conflict(error)` explains a 409 of `action` in the
 * page's words, shown above the server's own `detail`.
 */
function ask(title, lines, button, action, { password = false, danger = true, conflict = null } = {}) {
  confirmForm.reset();
  clearErrors(confirmForm);
  $("#confirm-title").textContent = title;
  $("#confirm-text").innerHTML = `<ul>${lines.map((line) => `<li>${escapeHtml(line)}</li>`).join("")}</ul>`;
  const yes = $("#confirm-yes");
  yes.textContent = button;
  yes.classList.toggle("danger", danger);
  yes.classList.toggle("primary", !danger);
  show($("#password-part"), password);
  confirmed = action;
  conflictSaid = conflict;
  confirmDialog.showModal();
  if (password) confirmForm.elements.new_password.focus();
}

confirmForm.querySelector("button.cancel").addEventListener("click", () => confirmDialog.close());
confirmForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(confirmForm);
  const yes = $("#confirm-yes");
  yes.disabled = true;
  try {
    await confirmed();
    confirmDialog.close();
  } catch (error) {
    showErrors(confirmForm, error, {});
    if (error.status === 409 && conflictSaid) {
      // The page's sentence, then the server's detail as it wrote it (it names what is in the way).
      confirmForm.querySelector(".form-error").innerHTML = `<span class="why">${escapeHtml(conflictSaid(error))}</span>
        <span class="detail">${escapeHtml(t.serverSaid)}${escapeHtml(error.message)}</span>`;
    }
  } finally {
    yes.disabled = false;
  }
});

/** What to call user `id`: from the lists read, else looked up (an account of the community). */
async function nameOf(id) {
  if (!state.names.has(id)) {
    try {
      state.names.set(id, label(await api(`/api/v1/users/${id}`)));
    } catch {
      state.names.set(id, `#${id}`);
    }
  }
  return state.names.get(id);
}

async function taskTitle(id) {
  try {
    return (await api(`/api/v1/tasks/${id}`)).title || "";
  } catch {
    return "";
  }
}

/** The outcome of switching an account off or making it an admin: `heading`, the tasks it
 * held and who holds them now, the shift days still rostered for it. */
async function showHandedOn(heading, outcome) {
  const handed = await Promise.all((outcome.tasks_handed_on || []).map(async (h) => ({
    ...h,
    title: await taskTitle(h.task_id),
    to: h.assignee_id == null ? null : await nameOf(h.assignee_id),
  })));
  const tasks = handed.length
    ? `<ul class="handed-on">${handed.map((h) => `<li data-task="${escapeHtml(h.task_id)}">${t.task} #${escapeHtml(h.task_id)}${h.title ? ` ${escapeHtml(h.title)}` : ""} → ${
      h.to == null ? `<b class="waiting">${t.waiting}</b>` : `<span class="assignee" data-id="${escapeHtml(h.assignee_id)}">${escapeHtml(h.to)}</span>`}</li>`).join("")}</ul>`
    : `<p class="no-tasks">${t.noTasks}</p>`;
  const shifts = (outcome.shifts_ahead || []).length ? shiftList(outcome.shifts_ahead) : `<p class="no-shifts">${t.noShifts}</p>`;
  const box = $("#outcome");
  box.innerHTML = `<h3>${escapeHtml(heading)}</h3>
    <h4>${t.handedOn}</h4>${tasks}<h4>${t.shiftsAhead}</h4>${shifts}`;
  box.hidden = false;
}

const shiftList = (days) => `<ul class="shifts-ahead">${days.map((d) => `<li>${escapeHtml(d)}</li>`).join("")}</ul>`;

/** A worker moved to other grids whom a roster still sends to a grid they left: those days. */
function showOldGridShifts(user) {
  const box = $("#outcome");
  box.innerHTML = `<h3>${escapeHtml(t.movedTitle(label(user)))}</h3><h4>${t.oldGridShifts}</h4>${shiftList(user.shifts_ahead)}`;
  box.hidden = false;
}

function showHeading(heading) {
  const box = $("#outcome");
  box.innerHTML = `<h3>${escapeHtml(heading)}</h3>`;
  box.hidden = false;
}

function switchOff(user) {
  ask(t.offTitle(label(user)), t.offText, t.switchOff, async () => {
    const outcome = await api(`/api/v1/users/${user.id}`, { method: "PATCH", body: { active: false } });
    say("");
    await showHandedOn(t.offDone(label(user)), outcome);
    // The list shows the accounts in use (the default): the account leaves it, said where it went.
    if ($("#filter-active").value === "true") {
      $("#outcome h3").insertAdjacentHTML("afterend", `<p class="left-list">${escapeHtml(t.leftList(label(user)))}</p>`);
    }
    await loadAccounts();
  });
}

// Switching on lets the person sign in again: asked as switching off is, in lighter words.
function switchOn(user) {
  ask(t.onTitle(label(user)), t.onText, t.switchOn, async () => {
    // Pressed again after a lost answer, the account is on: the same key answers the first.
    const body = { active: true, new_password: confirmForm.elements.new_password.value };
    await apiOnce(`/api/v1/users/${user.id}`, { method: "PATCH", body });
    $("#outcome").hidden = true;
    // Under "switched off" the account leaves the list: said where it went, as a switch-off is.
    const left = $("#filter-active").value === "false" ? ` ${t.backInList(label(user))}` : "";
    say(t.onDone(label(user)) + left);
    await loadAccounts();
  }, { danger: false, password: true });
}

/**
 * Save the edit form's `body` changing `user`'s role, once confirmed: it ends the account's
 * sign-ins, and made an admin the account hands on its tasks (shown as a switch-off's are).
 * A 409 (a leader still leading grids) is said in the confirmation, the edit form kept open
 * below it; field errors go back beside the form's fields. Made a grid leader, the account is
 * then named the leader of the grids ticked under "grids led" (`led`): the role first, so a
 * role refused changes no grid.
 */
function changeRole(user, body, led = []) {
  const to = body.role;
  const lines = to === "community_admin" ? [...t.roleText, ...t.roleTextAdmin] : t.roleText;
  const leads = user.led_grid_codes || [];
  ask(t.roleTitle(label(user), roleName(user.role), roleName(to)), lines, t.changeRole, async () => {
    let outcome;
    try {
      outcome = await api(`/api/v1/users/${user.id}`, { method: "PATCH", body });
    } catch (error) {
      if (error.status !== 422) throw error;
      confirmDialog.close();
      showErrors(accountForm, error, body);
      return;
    }
    const failed = await saveLed(led);
    say("");
    const heading = t.roleDone(label(outcome), roleName(outcome.role));
    if (to === "community_admin") await showHandedOn(heading, outcome);
    else showHeading(heading);
    await afterSave(outcome, led, failed);
  }, {
    conflict: () => (to !== "grid_leader" && leads.length ? t.stillLeads(label(user), gridsInText(leads)) : t.roleNotChanged),
  });
}

function resetPassword(user) {
  ask(t.pwTitle(label(user)), t.pwText, t.resetPassword, async () => {
    const body = { new_password: confirmForm.elements.new_password.value };
    await api(`/api/v1/users/${user.id}/password`, { method: "POST", body });
    $("#outcome").hidden = true;
    say(t.pwDone(label(user)));
  }, { password: true });
}

$("#accounts tbody").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const user = state.rows.get(Number(button.closest("tr").dataset.id));
  if (!user) return;
  const action = button.dataset.action;
  if (action === "edit") openForm(user);
  else if (action === "switch-off") switchOff(user);
  else if (action === "switch-on") switchOn(user);
  else if (action === "reset-password") resetPassword(user);
});

// --- the page -----------------------------------------------------------------------------------
/** The community's grids in service, with their leaders (read again after leaders change). */
async function fetchGrids() {
  const query = state.admin && state.me.community_code ? `?community=${encodeURIComponent(state.me.community_code)}` : "";
  try {
    const features = await apiPages(`/api/v1/grids${query}`, { pick: (body) => body?.features || [] });
    state.grids = features.map((f) => ({
      id: f.id, code: f.properties.code, name: f.properties.name, leader_id: f.properties.leader_id ?? null,
    })).sort((a, b) => a.code.localeCompare(b.code));
    state.gridNames = new Map(state.grids.map((g) => [g.code, g.name]));
  } catch { /* grid names are a help: codes are shown without them */ }
}

async function loadGrids() {
  await fetchGrids();
  // The grid filter offers the grids read (none read: all accounts, unfiltered).
  $("#filter-grid").insertAdjacentHTML("beforeend", state.grids.map((g) =>
    `<option value="${escapeHtml(g.code)}">${escapeHtml(g.name ? `${g.name} ${g.code}` : g.code)}</option>`).join(""));
}

// The language is chosen before signing in too (the toolbar's link shows once signed in).
$("#signin-lang").textContent = t.other;
$("#signin-lang").href = otherLangHref(lang);

async function start() {
  show($("#toolbar"));
  show($("#main"));
  const langLink = $("#lang");
  langLink.textContent = t.other;
  langLink.href = otherLangHref(lang);
  keepFresh();
  let me;
  try {
    me = await api("/api/v1/auth/me");
  } catch (error) {
    if (error.status === 401) return signOutHere();
    return say(t.failed + error.message, true);
  }
  state.me = me;
  show($("#reports-link"), me.role !== "worker"); // the coverage report's readers (the API's rule)
  // The audit log's readers (GET /api/v1/audit): a person's reads are checked there.
  show($("#to-audit"), ["community_admin", "district_viewer"].includes(me.role));
  state.admin = me.role === "community_admin";
  $("#who").textContent = `${me.display_name || me.username} · ${roleName(me.role)}`;
  if (!state.admin && me.role !== "grid_leader") {
    $("#notice").textContent = t.notForYou;
    show($("#notice"));
    return;
  }
  if (!state.admin) {
    $("#notice").textContent = t.leaderReadOnly;
    show($("#notice"));
    document.body.classList.add("read-only");
  }
  show($("#open-account"), state.admin);
  show($("#accounts-section"));
  await loadGrids();
  await loadAccounts();
  document.body.dataset.ready = "1";
}

for (const id of ["#filter-role", "#filter-grid", "#filter-active"]) {
  $(id).addEventListener("change", () => {
    state.page = 1;
    loadAccounts();
  });
}
$("#prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); loadAccounts(); });
$("#next").addEventListener("click", () => { state.page += 1; loadAccounts(); });
$("#open-account").addEventListener("click", () => openForm());

// The token is shared with /map and /app (same origin): signing out here signs out there too.
async function signOutHere() {
  await signOut();
  location.reload();
}

addEventListener("gridwork:session-ended", () => location.reload());
$("#signout").addEventListener("click", (e) => { e.preventDefault(); signOutHere(); });

const signinForm = $("#signin");
const begin = wireSignIn({
  form: signinForm, error: $("#signin-error"), lang, badLogin: t.badLogin, failed: t.failed, start,
});

if (getToken()) begin();
else signinForm.hidden = false;
