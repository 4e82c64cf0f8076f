// A task's own page in the workers' app (任务详情): what a worker needs to act on it and what a
// leader needs to close it. The lists showed a title, a state and a deadline only: the resident's
// words and number (first contact is due within hours), the door, the ticket number and what
// was done so far were nowhere in the app, and a leader told "任务已办结，待回访" could not
// record the return call or close the task. GET /api/v1/tasks/{id} (audited; the description,
// contact and points as the API gives the caller), the household's address from GET
// /api/v1/households/{id}, and the steps the caller may take (`your_actions`) sent with their
// note to POST /api/v1/tasks/{id}/transitions. The task is read online; offline, the user's own
// open tasks open as last read (web/src/task_pages.js, said above the page). A step taken is
// kept on the phone until answered (web/src/task_steps.js): pressed with no signal, or its
// answer lost, it waits as 待发送 (shown here and on the task's card) and goes with the app's
// syncs, once; refused meanwhile, it is shown with the server's words, to discard or take again.
// Photos of a step (the problem, the repair): taken with the camera, kept with the step (Blobs
// in IndexedDB) and uploaded first (POST /api/v1/tasks/{id}/photos, each answered with its id),
// then the step is sent naming them; a photo refused says so and sends no step. The history
// shows each step's photos as thumbnails, read with the token (an <img> cannot send it) into
// blob: URLs, let go when the page is redrawn.
import {
  TASK_TEXT, addressWords, api, apiBlob, beijingField, beijingInput, carriedOut, escapeHtml, newIdempotencyKey, noAnswer,
} from "./common.js";
import { keepPage, keptPage } from "./task_pages.js";
import { discardStep, dropStep, keepStep, mySteps, sendSteps, waitingOther } from "./task_steps.js";

const TEXT = {
  zh: {
    close: "关闭", loading: "正在读取…", offline: "离线：任务详情需要联网，联网后再打开。",
    keptCopy: (time, offline) => `${offline ? "离线" : "暂时读不到任务"}：这是 ${time} 读取的任务详情；所做的步骤保存在本机，${offline ? "联网后" : "稍后"}发送。`,
    failed: "无法读取这项任务：", gone: "这项任务已不在您的任务列表中（可能已办结、已改派或已移至其他网格）。",
    urgency: "紧急程度", source: "来源", ticket: "12345工单号", due: "办结期限", ticketDue: "（12345 时限）",
    overdue: "已超期", contactDue: "首次联系期限", contacted: "首次联系", where: "地点", grid: "网格",
    onMap: "在地图上查看", what: "诉求内容", noWords: "（未填写）", withheld: "（走访跟进事项：您的角色不可查看）", resident: "联系人",
    noContact: "未留联系方式", history: "处理记录", note: "说明", noteHint: "办理情况、退回原因等",
    satisfaction: "回访满意度", chooseSatisfaction: "请选择", needsReason: "退回必须写明原因。",
    needsSatisfaction: "回访需选择居民的满意度。", lost: "没有收到服务器的答复：已保存在本机，待发送，联网后自动发送，或请联网后再按一次（不会重复办理）。",
    queued: "离线：已保存在本机，待发送，联网后自动发送（照片一并上传）。", waiting: "待发送", refused: "未发送：",
    photoRefused: "照片上传失败：", takenAt: (time) => `记录于 ${time}`, syncedAt: (time) => `离线办理，${time} 送达`, withPhotos: (n) => `${n} 张照片`,
    retake: "重新办理", discard: "放弃", discardConfirm: (a) => `放弃这一步骤（${a}）？它将从本机删除，不会发送。`,
    replaceConfirm: (old, now) => `本机已有这项任务待发送的“${old}”（含其说明）。用这次的“${now}”替换它吗？`,
    sentLater: (a) => `已${a}（本机保存的步骤已发送）。`, refusedLater: (a) => `本机保存的“${a}”未被接受：`,
    notKept: "本机无法保存这一步骤（存储空间不足或被禁用）：", done: (a) => `已${a}。`, by: "处理人", system: "系统",
    assignee: "承办人", unassigned: "未分派",
    photos: "照片", addPhoto: "拍照或选择照片", chosen: (n) => `已选 ${n} 张照片，随本步骤提交`, clearPhotos: "清除照片",
    uploading: (i, n) => `正在上传照片 ${i}/${n}…`, uploadFailed: "照片上传失败，步骤未提交：", photo: "照片",
    photoFailed: "照片无法显示", oldPhotos: "照片引用（未上传到本系统）：",
    satisfactions: { satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意" },
    actions: TASK_TEXT.zh.actions,
    changeDeadline: "调整办理时限（12345延期或更正）", newDeadline: "新的办理时限（北京时间）",
    deadlineNote: "说明（如热线批准延期）", setDeadline: "调整时限", needDeadline: "请填写新的办理时限。",
    deadlineSet: "办理时限已调整，承办人已收到通知。", deadlineSame: "办理时限与原来相同，没有改动。",
    deadlineOffline: "网络未连接：调整时限需要联网。", deadlineRefused: "办理时限未调整：",
    // A field the server refused (422 `errors.json`), in the office's words (the server's
    // are English): what is wrong with the deadline's or the move's form.
    fieldWrong: {
      due_at: "办理时限须晚于现在，且在90天之内。", note: "说明有误（不能含空字符）。",
      grid_code: "不能移交到该网格（已撤销、不在本社区，或就是本网格）。", reason: "请写明移交原因（如：地址有误）。",
      location: "任务原位置不在该网格内：请填写正确地址。", household_id: "该住户不在所选网格。",
    },
    moveTask: "移交其他网格（地址或网格有误）", moveGrid: "移交到网格", chooseGrid: "请选择网格",
    moveAddress: "正确地址（可选，如 3号楼2单元502）", moveReason: "移交原因", move: "移交",
    needGrid: "请选择要移交到的网格。", needMoveReason: "请写明移交原因（如：地址有误）。",
    moveNone: "该网格没有这个地址的住户：请核对地址，或不填地址。",
    moveMany: (n) => `该网格有 ${n} 户符合这个地址：请补充单元、房号。`,
    moved: (grid) => `已移交到${grid}，并已在该网格重新派单。`, moveRefused: "未能移交：",
    moveOffline: "网络未连接：移交需要联网。", gridsFailed: "无法读取网格：",
    noGridToMove: "本社区没有其他在用的网格可以移交：地址不在本社区的，请联系社区管理员。",
    events: {
      create: "登记", dispatch: "派单", assign: "分派", accept: "接单", start: "开始处理", resolve: "办结",
      return: "退回", escalate: "上报", callback: "回访", close: "关闭", reopen: "重启", move: "移交网格",
      deadline: "调整时限", warn: "临期提醒", transfer: "改派",
    },
  },
  en: {
    close: "Close", loading: "Reading…", offline: "Offline: a task's page needs a connection; open it again online.",
    keptCopy: (time, offline) => `${offline ? "Offline" : "The task cannot be read now"}: the task as read at ${time}; a step taken is kept on this device and sent ${offline ? "once online" : "later"}.`,
    failed: "This task could not be read: ", gone: "That task is no longer in your lists (resolved, reassigned or moved to another grid?).",
    urgency: "Urgency", source: "Source", ticket: "12345 ticket", due: "Deadline", ticketDue: " (12345 hotline deadline)",
    overdue: "overdue", contactDue: "First contact by", contacted: "First contact", where: "Where", grid: "Grid",
    onMap: "On the map", what: "Request", noWords: "(none given)", withheld: "(a visit's follow-up: not for your role)", resident: "Contact",
    noContact: "No contact left", history: "History", note: "Note", noteHint: "What was done, why it is returned…",
    satisfaction: "Resident's satisfaction", chooseSatisfaction: "Choose", needsReason: "Say why the task is returned.",
    needsSatisfaction: "A callback records the resident's satisfaction.",
    changeDeadline: "Change the time limit (the 12345 hotline extended or corrected it)", newDeadline: "New time limit (Beijing time)",
    deadlineNote: "Note (e.g. the hotline approved an extension)", setDeadline: "Change deadline", needDeadline: "Give the new time limit.",
    deadlineSet: "The time limit is changed; the assignee is told.", deadlineSame: "The same time limit: nothing changed.",
    deadlineOffline: "Offline: changing the time limit needs a connection.", deadlineRefused: "The time limit was not changed: ",
    fieldWrong: {
      due_at: "The time limit must be after now and within 90 days.", note: "Check the note (no NUL character).",
      grid_code: "Not a grid it can move to (retired, of another community, or its own).", reason: "Say why it moves (the address was wrong, say).",
      location: "The task does not stand in that grid: give the right address.", household_id: "That household is not of the grid chosen.",
    },
    moveTask: "Move to another grid (wrong address or grid)", moveGrid: "Move to grid", chooseGrid: "Choose a grid",
    moveAddress: "The right address (optional, e.g. 3 2 502)", moveReason: "Why it moves", move: "Move",
    needGrid: "Choose the grid it moves to.", needMoveReason: "Say why it moves (the address was wrong, say).",
    moveNone: "No household of that grid at this address: check it, or leave it empty.",
    moveMany: (n) => `${n} households of that grid match this address: add the unit or room.`,
    moved: (grid) => `Moved to ${grid} and dispatched there.`, moveRefused: "Not moved: ",
    moveOffline: "Offline: moving a task needs a connection.", gridsFailed: "Could not read the grids: ",
    noGridToMove: "No other grid of this community to move it to: for an address outside the community, ask the community admin.",
    lost: "No answer from the server: kept on this device, waiting to send; it goes once online, or press again once online (it will not be done twice).",
    queued: "Offline: kept on this device, waiting to send; it goes once online (photos too).", waiting: "Waiting to send", refused: "Not sent: ",
    photoRefused: "A photo could not be uploaded: ", takenAt: (time) => `taken ${time}`, syncedAt: (time) => `taken offline, arrived ${time}`, withPhotos: (n) => `${n} photo(s)`,
    retake: "Take it again", discard: "Discard", discardConfirm: (a) => `Discard this step (${a})? It is deleted from this device and not sent.`,
    replaceConfirm: (old, now) => `"${old}" (with its note) waits on this device for this task. Replace it with this "${now}"?`,
    sentLater: (a) => `${a}: done (the step kept on this device was sent).`, refusedLater: (a) => `The kept step "${a}" was not accepted: `,
    notKept: "This device could not keep the step (storage full or disabled): ", done: (a) => `${a}: done.`, by: "By", system: "system",
    assignee: "Assignee", unassigned: "unassigned",
    photos: "Photos", addPhoto: "Take or choose a photo", chosen: (n) => `${n} photo(s) chosen, sent with the step`, clearPhotos: "Clear the photos",
    uploading: (i, n) => `Uploading photo ${i} of ${n}…`, uploadFailed: "A photo could not be uploaded; the step was not sent: ", photo: "Photo",
    photoFailed: "The photo cannot be shown", oldPhotos: "Photo references (not uploaded here): ",
    satisfactions: { satisfied: "satisfied", basically_satisfied: "basically satisfied", unsatisfied: "unsatisfied" },
    actions: TASK_TEXT.en.actions,
    events: {
      create: "opened", dispatch: "dispatched", assign: "assigned", accept: "accepted", start: "started", resolve: "resolved",
      return: "returned", escalate: "escalated", callback: "called back", close: "closed", reopen: "reopened", move: "moved",
      deadline: "deadline changed", warn: "deadline near", transfer: "re-dispatched",
    },
  },
};
// The notes the server writes itself on a task's steps, stored in English (api/services/dispatch.py
// DISPATCH_NOTES: why dispatch chose the assignee; api/services/tasks.py DEADLINE_NOTE: the
// tick's escalation), said on the Chinese page in its words; tests/api/test_web.py holds the
// table to the server. (A worker's own note is shown as written.)
export const DISPATCH_NOTES_ZH = {
  "the worker who found it": "派给走访时发现问题的网格员",
  "grid worker on duty": "派给本网格当班的网格员",
  "reliever": "派给替岗人员",
  "B-post on duty": "派给在本网格当班的B岗人员",
  "grid leader (no worker on duty)": "本网格无人当班，派给网格长",
  "the window worker who settled it": "窗口受理人当场办结",
  "deadline passed": "已超过办结期限，自动上报"
};
// The notes the server writes in Chinese (api/services/tasks.py SWITCHED_OFF_NOTE …,
// retention.py ERASED_NOTE), said on the English page in English; tests/api/test_web.py holds
// the table to the server. GRID_RETIRED follows "{old grid} → {new grid}: " on a move.
export const NOTES_EN = {
  "原承办人账号已停用": "the assignee's account was switched off",
  "窗口当场办结": "settled at the window",
  "原承办人已调任社区管理员": "the assignee became a community admin",
  "12345 改派自其他社区": "re-dispatched by 12345 from another community",
  "12345 改派至其他社区": "re-dispatched by 12345 to another community",
  "诉求人联系方式保留期满，已删除": "the requester's contact details were erased when their retention ended",
  "原网格已撤销": "the grid was retired"
};
const GRID_RETIRED = /^(.* → .*: )(原网格已撤销)$/;
/** A step's note as the page says it: the server's own in the page's language, a person's as written. */
const noteOf = (lang, e) => {
  const system = e.action === "dispatch" || (e.action === "escalate" && e.actor_id == null);
  if (lang === "zh") return system && Object.hasOwn(DISPATCH_NOTES_ZH, e.note) ? DISPATCH_NOTES_ZH[e.note] : e.note;
  if (e.note && Object.hasOwn(NOTES_EN, e.note)) return NOTES_EN[e.note];
  const moved = e.action === "move" && GRID_RETIRED.exec(e.note || "");
  return moved ? moved[1] + NOTES_EN[moved[2]] : e.note;
};

// The steps taken here, in this order (`assign` and `move` are the grid list's and the office's).
const STEPS = ["accept", "start", "resolve", "return", "escalate", "callback", "close", "reopen"];

/** What a tel: link dials of a phone as it was written: its first number (a second one, or an
 * extension after 转, is said beside it, not run on into one long wrong number), full-width
 * digits as plain ones; "" where it holds no number, or is masked (138****5678: the API
 * masks it for district viewers, and its digits around the stars are no number to call). */
function dialled(phone) {
  const written = String(phone ?? "").normalize("NFKC");
  if (written.includes("*")) return "";
  const number = written.match(/\+?\d[\d\s\-().]*\d/);
  return number ? number[0].replace(/[^\d+]/g, "") : "";
}

// A step's references sent as strings (a client's URLs or storage keys: nothing served here),
// its `photos` less the URLs of the photos uploaded for it (`attachments`).
const refs = (e) => {
  const uploaded = new Set((e.attachments || []).map((p) => p.url));
  return (e.photos || []).filter((p) => !uploaded.has(p));
};
const address = (h) => [h.building, h.unit, h.floor && !h.room ? h.floor : "", h.room].filter(Boolean).join("-");

/**
 * The page, in `dialog` (a <dialog>: it holds the focus and Escape closes it). `localTime(date)`
 * is a time as the page shows it (Beijing time), and `changed()` is
 * called after a step was taken (the lists are read again); `waiting(error)` after a step was
 * kept, discarded or left waiting (`error`: why it was not sent, to try again later). Returns
 * {open(id), close(), sendWaiting()}: `close()` closes and empties the page; `sendWaiting()` sends the kept steps (the app's syncs), shows what
 * came of them on the task shown and throws why those left waiting were not sent.
 */
export function taskDetail({ lang, dialog, localTime, changed, waiting }) {
  const t = TEXT[lang];
  const { statuses, urgencies, sources, types, lists } = TASK_TEXT[lang];
  let shown = null; // the id of the task shown; a later open() replaces an earlier read
  let back = null; // what had the focus as the page opened (a task's title in a list)
  let chosen = []; // the photos chosen for the next step ({blob, name}, or {id} uploaded), until kept
  let thumbs = []; // the blob: URLs of the history's thumbnails, let go with the page

  const letGo = () => { for (const url of thumbs) URL.revokeObjectURL(url); thumbs = []; };

  dialog.addEventListener("click", (e) => {
    if (e.target === dialog || e.target.closest("button.close")) dialog.close();
  });
  dialog.addEventListener("close", () => {
    shown = null;
    chosen = [];
    letGo();
    // The focus back where it was: a list read again after a step has drawn the title anew,
    // and the focus fell to the page's top, the keyboard's place in the list lost.
    const opener = back;
    back = null;
    const again = opener?.isConnected ? opener
      : opener?.dataset?.open ? document.querySelector(`button[data-open="${CSS.escape(opener.dataset.open)}"]`) : null;
    again?.focus();
  });

  // `focus`: the page was drawn anew after the step (its top shown, the focus lost to the
  // page's body): what came of it is brought into view and focused, under the steps.
  const say = (text, error = false, focus = false) => {
    const status = dialog.querySelector(".task-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", error);
    if (focus) status.focus();
  };

  // The status line stands under the steps (in `inner`, as `draw` places it), where the step
  // was pressed: last, under the history, a phone showed it nowhere in sight.
  const STATUS = '<p class="task-status" role="status" tabindex="-1"></p>';
  function frame(inner) {
    letGo();
    dialog.innerHTML = `<div class="task-detail"><button type="button" class="close" aria-label="${escapeHtml(t.close)}">×</button>${inner}
      ${inner.includes('class="task-status"') ? "" : STATUS}</div>`;
  }

  const row = (label, html, cls = "") => `<tr class="${cls}"><th scope="row">${escapeHtml(label)}</th><td>${html}</td></tr>`;

  /** The task's page; `readAt`: the time a page kept on the phone was read (said above it). */
  function draw(task, household, readAt = null) {
    // A page kept on the phone was overdue or not as read: its deadline may have passed since.
    const late = task.overdue || (readAt !== null && new Date(task.due_at) < new Date());
    const due = `${escapeHtml(localTime(new Date(task.due_at)))}${task.ticket_due_at ? escapeHtml(t.ticketDue) : ""}${late ? ` <b class="overdue">${escapeHtml(t.overdue)}</b>` : ""}`;
    const contact = task.first_contact_at
      ? row(t.contacted, escapeHtml(localTime(new Date(task.first_contact_at))))
      : task.first_contact_due_at ? row(t.contactDue, escapeHtml(localTime(new Date(task.first_contact_due_at))), "contact-due") : "";
    const { lon, lat } = task.location || {};
    const place = [household ? escapeHtml(address(household)) : "", `${escapeHtml(t.grid)} ${escapeHtml(task.grid_code)}`]
      .filter(Boolean).join(" · ");
    const map = lon != null ? ` <a class="on-map" href="/map?at=${Number(lon).toFixed(6)},${Number(lat).toFixed(6)}">${escapeHtml(t.onMap)}</a>` : "";
    const who = task.complainant || {};
    const dial = dialled(who.phone);
    const phone = who.phone ? (dial ? `<a class="phone" href="tel:${escapeHtml(dial)}">${escapeHtml(who.phone)}</a>` : escapeHtml(who.phone)) : "";
    const resident = who.name || who.phone ? [escapeHtml(who.name || ""), phone].filter(Boolean).join(" ") : `<span class="muted">${escapeHtml(t.noContact)}</span>`;
    const what = task.description == null && task.source === "visit"
      ? `<span class="muted">${escapeHtml(t.withheld)}</span>`
      : task.description ? escapeHtml(task.description) : `<span class="muted">${escapeHtml(t.noWords)}</span>`;
    // A step kept on a phone with no signal is said at the time it was taken, and when it
    // reached the server beside it (the leader reads both: the phone's time is its word).
    const keptLate = (e) => e.taken_at && new Date(e.at) - new Date(e.taken_at) >= 60_000;
    const events = (task.events || []).slice().reverse().map((e) => `<li data-action="${escapeHtml(e.action)}">
      <span class="when">${escapeHtml(localTime(new Date(keptLate(e) ? e.taken_at : e.at)))}</span>${keptLate(e) ? ` <span class="muted synced-at">(${escapeHtml(t.syncedAt(localTime(new Date(e.at))))})</span>` : ""} <b>${escapeHtml(t.events[e.action] || e.action)}</b>
      ${e.to_status ? `<span class="muted">→ ${escapeHtml(statuses[e.to_status] || e.to_status)}</span>` : ""}
      ${e.note ? `<div class="event-note">${escapeHtml(noteOf(lang, e))}</div>` : ""}
      ${(e.attachments || []).length ? `<div class="event-photos">${e.attachments.map((p) => `<a class="thumb" data-src="${escapeHtml(p.url)}" target="_blank" rel="noopener"><img alt="${escapeHtml(t.photo)}"></a>`).join("")}</div>` : ""}
      ${refs(e).length ? `<div class="event-note muted photo-refs">${escapeHtml(t.oldPhotos + refs(e).join(", "))}</div>` : ""}</li>`).join("");
    const steps = STEPS.filter((a) => (task.your_actions || []).includes(a));
    const form = steps.length ? `<form class="task-steps" novalidate>
      <label>${escapeHtml(t.note)} <textarea name="note" rows="3" maxlength="10000" placeholder="${escapeHtml(t.noteHint)}"></textarea></label>
      ${steps.includes("callback") ? `<label>${escapeHtml(t.satisfaction)} <select name="satisfaction"><option value="">${escapeHtml(t.chooseSatisfaction)}</option>
        ${Object.entries(t.satisfactions).map(([v, label]) => `<option value="${v}">${escapeHtml(label)}</option>`).join("")}</select></label>` : ""}
      <div class="step-photos"><label class="add-photo">${escapeHtml(t.addPhoto)} <input type="file" name="photo" accept="image/*" capture="environment" multiple></label>
        <span class="chosen" hidden></span> <button type="button" class="clear-photos" hidden>${escapeHtml(t.clearPhotos)}</button></div>
      <div class="actions">${steps.map((a) => `<button type="submit" value="${a}" data-step="${a}">${escapeHtml(t.actions[a])}</button>`).join("")}</div></form>` : "";
    // The hotline's extension (延期) or correction of a ticket's time limit, entered by the
    // grid's leader or the community admin (those who may move the task), online only.
    const deadlineForm = task.source === "hotline" && !readAt && (task.your_actions || []).includes("move")
      ? `<details class="ticket-deadline"><summary>${escapeHtml(t.changeDeadline)}</summary><form class="ticket-deadline" novalidate>
        <label>${escapeHtml(t.newDeadline)} <input type="datetime-local" name="due_at" value="${escapeHtml(beijingField(task.due_at))}" required></label>
        <label>${escapeHtml(t.deadlineNote)} <input name="note" maxlength="500" autocomplete="off"></label>
        <button type="submit">${escapeHtml(t.setDeadline)}</button></form></details>` : "";
    // A task opened for the wrong grid moved to the right one (POST /tasks/{id}/move), by
    // whoever may move it, online only: its place the right household's, found by address in
    // that grid, or kept where it lies in it.
    const moveForm = !readAt && (task.your_actions || []).includes("move")
      ? `<details class="task-move"><summary>${escapeHtml(t.moveTask)}</summary><form class="task-move" novalidate>
        <label>${escapeHtml(t.moveGrid)} <select name="grid_code" required><option value="">${escapeHtml(t.chooseGrid)}</option></select></label>
        <label>${escapeHtml(t.moveAddress)} <input name="address" maxlength="100" autocomplete="off" spellcheck="false"></label>
        <label>${escapeHtml(t.moveReason)} <input name="reason" maxlength="500" autocomplete="off" required></label>
        <button type="submit">${escapeHtml(t.move)}</button></form></details>` : "";
    const slot = '<div class="kept-step-slot"></div>';
    const copy = readAt ? `<p class="muted kept-copy">${escapeHtml(t.keptCopy(localTime(new Date(readAt)), !navigator.onLine))}</p>` : "";
    frame(`${copy}<h2 id="task-detail-title">${escapeHtml(task.title)}</h2>
      <p><span class="state">${escapeHtml(statuses[task.status] || task.status)}</span></p>
      <table class="plain facts"><tbody>
        ${row(t.urgency, escapeHtml(urgencies[task.urgency] || task.urgency))}
        ${row(t.source, escapeHtml([sources[task.source] || task.source,
          // A visit's follow-up: the list it is on (需求清单 / 问题清单) says more than its type.
          task.list ? lists[task.list] || task.list : types[task.type] || task.type].filter(Boolean).join(" · ")))}
        ${task.external_id ? row(t.ticket, escapeHtml(task.external_id), "ticket") : ""}
        ${row(t.due, due, late ? "late" : "")}
        ${contact}
        ${row(t.assignee, escapeHtml(task.assignee_name || t.unassigned))}
        ${row(t.where, place + map, "where")}
        ${row(t.resident, resident, "resident")}
      </tbody></table>
      <h3>${escapeHtml(t.what)}</h3><p class="description">${what}</p>
      ${slot}${form}${deadlineForm}${moveForm}${STATUS}
      <h3>${escapeHtml(t.history)}</h3><ol class="events">${events}</ol>`);
    dialog.dataset.task = String(task.id);
    const stepsForm = dialog.querySelector("form.task-steps");
    stepsForm?.addEventListener("submit", (e) => {
      e.preventDefault();
      step(task, e.submitter?.value, e.target);
    });
    stepsForm?.elements.photo.addEventListener("change", (e) => {
      // Each shot of the camera is one choice: they add up until the step is sent.
      chosen = chosen.concat(Array.from(e.target.files || [], (file) => ({ blob: file, name: file.name || "photo.jpg" })));
      e.target.value = "";
      showChosen(stepsForm);
    });
    stepsForm?.querySelector("button.clear-photos").addEventListener("click", () => { chosen = []; showChosen(stepsForm); });
    showChosen(stepsForm);
    dialog.querySelector("form.ticket-deadline")?.addEventListener("submit", (e) => {
      e.preventDefault();
      changeDeadline(task, e.target);
    });
    const moving = dialog.querySelector("details.task-move");
    moving?.addEventListener("toggle", () => { if (moving.open) offerGrids(task, moving.querySelector("form")); });
    moving?.querySelector("form").addEventListener("submit", (e) => {
      e.preventDefault();
      moveTask(task, e.target);
    });
    showThumbnails();
    return showKept(task.id);
  }

  /** The grids the task may move to in the form's select: `GET /tasks/{id}/move`, every active
   * grid of its community but its own, whose grids they are or not (the leader of the one wrong
   * grid moves its task to a neighbour: `/grids/window`, their own grid only, offered none).
   * None (a community of one grid): the form says whom to ask. */
  async function offerGrids(task, form) {
    const select = form.elements.grid_code;
    if (select.options.length > 1 || form.hidden) return;
    let grids;
    try {
      grids = (await api(`/api/v1/tasks/${encodeURIComponent(task.id)}/move`)).features;
    } catch (error) {
      return say(t.gridsFailed + (error.body?.detail || error.message), true);
    }
    if (shown !== task.id || select.options.length > 1) return;
    for (const g of grids) {
      if (g.properties.code === task.grid_code) continue;
      select.add(new Option(`${g.properties.name}（${g.properties.code}）`, g.properties.code));
    }
    if (select.options.length === 1) {
      form.hidden = true;
      form.insertAdjacentHTML("afterend", `<p class="muted no-grid">${escapeHtml(t.noGridToMove)}</p>`);
    }
  }

  /** POST /tasks/{id}/move: to the grid chosen, at the household of that grid the server finds
   * at the address given, or where it stands; read again once moved. */
  async function moveTask(task, form) {
    const option = form.elements.grid_code.selectedOptions[0];
    const reason = form.elements.reason.value.trim();
    if (!option?.value) return say(t.needGrid, true);
    if (!reason) return say(t.needMoveReason, true);
    if (!navigator.onLine) return say(t.moveOffline, true);
    const button = form.querySelector("button");
    button.disabled = true;
    const body = { grid_code: option.value, reason };
    // The right household, by the address the resident gave: the server finds the one of that
    // grid at it (a leader of another grid may not look its households up, and needs not).
    const words = addressWords(form.elements.address.value);
    if (words.length) body.address = words.join(" ");
    try {
      // One key for the move as the form holds it: pressed again after a lost answer, the
      // server answers the first move instead of refusing a second ("already in that grid").
      const sent = JSON.stringify(body);
      if (form.dataset.sent !== sent) {
        form.dataset.sent = sent;
        form.dataset.key = newIdempotencyKey("move");
      }
      await api(`/api/v1/tasks/${encodeURIComponent(task.id)}/move`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": form.dataset.key },
        body: sent,
      });
    } catch (error) {
      // Pressed again after a lost answer, by a leader the move took the task away from: the
      // server says it was carried out, its answer no longer theirs to read. It was moved.
      if (!carriedOut(error)) return refusedMove(error);
    }
    changed?.();
    if (shown !== task.id) return;
    await open(task.id);
    if (shown === task.id) say(t.moved(option.textContent), false, true);

    function refusedMove(error) {
      button.disabled = false;
      const matches = error.body?.errors?.json?.address ? error.body.matches : undefined;
      if (matches !== undefined) return say(matches ? t.moveMany(matches) : t.moveNone, true);
      return say(t.moveRefused + refusalWords(error), true);
    }
  }

  /** Why the server refused a form: the fields it named, in the page's words; else its own. */
  function refusalWords(error) {
    const said = Object.keys(error.body?.errors?.json || {}).map((field) => t.fieldWrong[field]).filter(Boolean);
    return said.length ? [...new Set(said)].join(" ") : error.body?.detail || error.message;
  }

  /** PUT /tasks/{id}/deadline: the ticket's new time limit, read again once changed. */
  async function changeDeadline(task, form) {
    const value = form.elements.due_at.value;
    if (!value) return say(t.needDeadline, true);
    // Untouched, the field holds the deadline to the minute: sent, a deadline with seconds
    // (one its urgency set) was a change, a step "X → X" and a notice to the assignee.
    if (value === beijingField(task.due_at)) return say(t.deadlineSame);
    if (!navigator.onLine) return say(t.deadlineOffline, true);
    const button = form.querySelector("button");
    button.disabled = true;
    const before = task.due_at;
    let answer;
    try {
      answer = await api(`/api/v1/tasks/${encodeURIComponent(task.id)}/deadline`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ due_at: beijingInput(value), note: form.elements.note.value.trim() }),
      });
    } catch (error) {
      button.disabled = false;
      return say(t.deadlineRefused + refusalWords(error), true);
    }
    changed?.();
    if (shown !== task.id) return;
    await open(task.id);
    if (shown === task.id) say(answer.due_at === before ? t.deadlineSame : t.deadlineSet, false, true);
  }

  /** The step kept on the phone for task `id` (of the signed-in user), or undefined. */
  const keptOf = async (id) => (await mySteps()).find((r) => r.task_id === id);

  /** Show the step kept for task `id` above the steps: waiting, or refused with the server's
   * words, its note and what to do with it. */
  async function showKept(id) {
    const record = await keptOf(id).catch(() => undefined);
    const slot = dialog.querySelector(".kept-step-slot");
    if (shown !== id || !slot) return;
    if (!record) {
      slot.innerHTML = "";
      return;
    }
    const what = `${escapeHtml(t.actions[record.body.action] || record.body.action)} · ${escapeHtml(t.takenAt(localTime(new Date(record.takenAt))))}`
      + `${record.photos?.length ? ` · ${escapeHtml(t.withPhotos(record.photos.length))}` : ""}`;
    const note = record.body.note ? `<div class="event-note">${escapeHtml(record.body.note)}</div>` : "";
    if (record.state === "refused") {
      const retake = dialog.querySelector("form.task-steps") ? `<button type="button" data-retake>${escapeHtml(t.retake)}</button> ` : "";
      slot.innerHTML = `<div class="kept-step refused" data-key="${escapeHtml(record.key)}"><strong>${escapeHtml(record.photoRefused ? t.refused + t.photoRefused : t.refused)}</strong>${escapeHtml(record.refusal)}
        <div>${what}</div>${note}<div class="actions">${retake}<button type="button" data-discard>${escapeHtml(t.discard)}</button></div></div>`;
    } else {
      slot.innerHTML = `<div class="kept-step waiting" data-key="${escapeHtml(record.key)}"><strong>${escapeHtml(t.waiting)}</strong> · ${what}${note}</div>`;
    }
  }

  dialog.addEventListener("click", async (e) => {
    const box = e.target.closest(".kept-step[data-key]");
    if (!box) return;
    const record = (await mySteps()).find((r) => r.key === box.dataset.key);
    if (!record) return;
    if (e.target.closest("button[data-discard]")) {
      if (!confirm(t.discardConfirm(t.actions[record.body.action] || record.body.action))) return;
      await discardStep(record);
      waiting?.();
      await showKept(record.task_id);
      say("");
    } else if (e.target.closest("button[data-retake]")) {
      // Its words and photos back in the form, for the step the task has now; it stays kept
      // until that step is (which replaces it).
      const form = dialog.querySelector("form.task-steps");
      if (!form) return;
      form.elements.note.value = record.body.note || "";
      if (form.elements.satisfaction && record.body.satisfaction) form.elements.satisfaction.value = record.body.satisfaction;
      chosen = (record.photos || []).map((p) => ({ ...p }));
      showChosen(form);
      say("");
      form.elements.note.focus();
    }
  });

  function showChosen(form) {
    if (!form) return;
    const label = form.querySelector(".chosen");
    label.textContent = chosen.length ? t.chosen(chosen.length) : "";
    label.hidden = form.querySelector("button.clear-photos").hidden = !chosen.length;
  }

  /** Each thumbnail of the history, read with the token into a blob: URL. */
  function showThumbnails() {
    const id = shown;
    for (const link of dialog.querySelectorAll("ol.events a.thumb[data-src]")) {
      apiBlob(link.dataset.src).then((blob) => {
        if (shown !== id || !link.isConnected) return; // another task, or the page redrawn
        const url = URL.createObjectURL(blob);
        thumbs.push(url);
        link.href = url;
        link.querySelector("img").src = url;
      }).catch(() => {
        link.classList.add("failed");
        link.querySelector("img").alt = t.photoFailed;
      });
    }
  }

  async function step(task, action, form) {
    if (!action) return;
    const note = form.elements.note.value.trim();
    const satisfaction = form.elements.satisfaction?.value || "";
    if (action === "return" && !note) return say(t.needsReason, true);
    if (action === "callback" && !satisfaction) return say(t.needsSatisfaction, true);
    const buttons = (on) => { for (const button of form.querySelectorAll("button")) button.disabled = !on; };
    buttons(false);
    const here = () => shown === task.id; // not closed, nor another task opened, meanwhile
    const body = { action, note, ...(action === "callback" ? { satisfaction } : {}) };
    const photos = chosen;
    // Another step pressed on the page while one waits (no signal): it would replace it, note
    // and all; asked first. (A step on the task read again since is the worker's word on the
    // task as it is now.)
    const other = await waitingOther({ task, body }).catch(() => null);
    const named = (a) => t.actions[a] || a;
    if (other && !confirm(t.replaceConfirm(named(other.body.action), named(action)))) {
      buttons(true);
      return;
    }
    // Kept before it is sent, with its key and the task's `updated_at` it is taken on: a page
    // lost on the way, or no answer, still has it. The same step pressed again after a lost
    // answer is the one kept, with its key: the server answers the first, never does it twice.
    let record = null;
    let whyNotKept = null;
    try {
      record = await keepStep({ task, body, photos });
    } catch (error) {
      whyNotKept = error;
    }
    if (!record) {
      buttons(true);
      return say(t.notKept + (whyNotKept?.message || ""), true);
    }
    chosen = [];
    showChosen(form);
    if (!navigator.onLine) {
      buttons(true);
      waiting?.();
      if (!here()) return;
      await showKept(task.id);
      say(t.queued);
      return;
    }
    say("");
    const outcome = await sendSteps((i, n) => { if (here()) say(t.uploading(i, n)); });
    const done = outcome.done.find((o) => o.record.key === record.key);
    const refused = outcome.refused.find((o) => o.record.key === record.key);
    buttons(true);
    if (done || outcome.done.length || outcome.refused.length) changed?.();
    if (done) {
      waiting?.();
      if (!here()) return;
      await open(task.id);
      if (here()) say(t.done(t.actions[action]), false, true);
      return;
    }
    if (refused) {
      if (!here()) return waiting?.(); // kept, refused, on the task's card: not lost unseen
      // Refused as the worker sent it: the form holds it again (its words, its photos), the
      // phone need not keep it twice.
      await dropStep(record.key).catch(() => {});
      waiting?.();
      chosen = (refused.record.photos || []).map((p) => ({ ...p }));
      if (refused.photo) {
        showChosen(form);
        return say(t.uploadFailed + refused.refusal, true);
      }
      // The task changed meanwhile (another step, a reassign, a move): its steps shown are
      // stale, each would be refused in turn. It is read again, and so are the lists.
      const written = form.elements.note.value;
      await open(task.id);
      if (!here()) return;
      const again = dialog.querySelector("form.task-steps");
      if (again) {
        again.elements.note.value = written;
        showChosen(again);
      }
      say(refused.refusal, true, true);
      return;
    }
    if (!(await mySteps()).some((r) => r.key === record.key)) {
      // Sent by a sync on its way meanwhile, which read the lists and the page again.
      return;
    }
    waiting?.(outcome.error || new Error("kept"));
    if (!here()) return;
    await showKept(task.id);
    say(t.lost, true);
  }

  // What the app's syncs sent: the lists read again, and the task shown, if theirs, too.
  async function sendWaiting() {
    const { done, refused, error } = await sendSteps();
    if (done.length || refused.length) {
      await changed?.();
      const id = shown;
      const last = [...done, ...refused].filter((o) => o.record.task_id === id).pop();
      if (last && dialog.open) {
        const written = dialog.querySelector("form.task-steps textarea[name=note]")?.value || "";
        await open(id);
        const note = dialog.querySelector("form.task-steps textarea[name=note]");
        if (shown === id && note) note.value = written;
        const action = t.actions[last.record.body.action] || last.record.body.action;
        if (shown === id) say(last.task ? t.sentLater(action) : t.refusedLater(action) + last.refusal, !last.task);
      }
    }
    if (error) throw error;
  }

  /** Close the page and forget what it showed: the session ended, and whoever holds the phone
   * next reads nothing of the task (its title, the resident's words and number) nor its steps. */
  function close() {
    shown = null;
    if (dialog.open) dialog.close();
    letGo();
    dialog.innerHTML = "";
    delete dialog.dataset.task;
  }

  async function open(id) {
    shown = id;
    if (!dialog.open) {
      back = document.activeElement;
      dialog.showModal();
    }
    // Offline (or no answer), the page as last read on the phone (task_pages.js: the user's
    // own open tasks), its steps kept until they can be sent; else what is kept of its step.
    const slot = '<div class="kept-step-slot"></div>';
    const asKept = async (why, cls) => {
      const page = await keptPage(id);
      if (shown !== id) return;
      if (page) return draw(page.task, page.household, page.readAt);
      frame(`<p class="${cls}">${escapeHtml(why)}</p>${slot}`);
      return showKept(id);
    };
    if (!navigator.onLine) return asKept(t.offline, "muted");
    frame(`<p class="muted">${escapeHtml(t.loading)}</p>`);
    let task;
    let household = null;
    try {
      task = await api(`/api/v1/tasks/${encodeURIComponent(id)}`);
      if (task.household_id) {
        household = await api(`/api/v1/households/${task.household_id}`).catch(() => null);
      }
    } catch (error) {
      if (shown !== id) return;
      const why = error.status === 404 ? t.gone : error.status ? t.failed + (error.body?.detail || error.message) : t.offline;
      if (noAnswer(error) && error.status !== 401) return asKept(why, "error");
      frame(`<p class="error">${escapeHtml(why)}</p>${slot}`);
      return showKept(id);
    }
    keepPage(task, household).catch(() => {});
    if (shown !== id) return; // another task was opened meanwhile
    await draw(task, household);
  }


  return { open, close, sendWaiting };
}
