// A task's own page in the workers' app (任务详情): what a worker needs to act on it and what a
// leader needs to close it. The lists showed a title, a state and a deadline only: the resident's
// words and number (first contact is due within hours), the door, the ticket number and what
// was done so far were nowhere in the app, and a leader told "任务已办结，待回访" could not
// record the return call or close the task. GET /api/v1/tasks/{id} (audited; the description,
// contact and points as the API gives the caller), the household's address from GET
// /api/v1/households/{id}, and the steps the caller may take (`your_actions`) sent with their
// note to POST /api/v1/tasks/{id}/transitions. Online only: nothing of it is kept on the phone.
// Photos of a step (the problem, the repair): taken with the camera, uploaded first (POST
// /api/v1/tasks/{id}/photos, each answered with its id), then the step is sent naming them; an
// upload failing says so and sends no step. The history shows each step's photos as thumbnails,
// read with the token (an <img> cannot send it) into blob: URLs, let go when the page is redrawn.
import { TASK_TEXT, api, apiBlob, apiOnce, escapeHtml } from "./common.js";

const TEXT = {
  zh: {
    close: "关闭", loading: "正在读取…", offline: "离线：任务详情需要联网，联网后再打开。",
    failed: "无法读取这项任务：", gone: "这项任务已不在您的任务列表中（可能已办结、已改派或已移至其他网格）。",
    urgency: "紧急程度", source: "来源", ticket: "12345工单号", due: "办结期限", ticketDue: "（12345 时限）",
    overdue: "已超期", contactDue: "首次联系期限", contacted: "首次联系", where: "地点", grid: "网格",
    onMap: "在地图上查看", what: "诉求内容", withheld: "（走访跟进事项：您的角色不可查看）", resident: "联系人",
    noContact: "未留联系方式", history: "处理记录", note: "说明", noteHint: "办理情况、退回原因等",
    satisfaction: "回访满意度", chooseSatisfaction: "请选择", needsReason: "退回必须写明原因。",
    needsSatisfaction: "回访需选择居民的满意度。", lost: "没有收到服务器的答复：请联网后再按一次（不会重复办理）。", done: (a) => `已${a}。`, by: "处理人", system: "系统",
    assignee: "承办人", unassigned: "未分派",
    photos: "照片", addPhoto: "拍照或选择照片", chosen: (n) => `已选 ${n} 张照片，随本步骤提交`, clearPhotos: "清除照片",
    uploading: (i, n) => `正在上传照片 ${i}/${n}…`, uploadFailed: "照片上传失败，步骤未提交：", photo: "照片",
    photoFailed: "照片无法显示", oldPhotos: "照片引用（未上传到本系统）：",
    satisfactions: { satisfied: "满意", basically_satisfied: "基本满意", unsatisfied: "不满意" },
    actions: {
      accept: "接单", start: "开始处理", resolve: "办结", return: "退回", escalate: "上报",
      callback: "记录回访", close: "关闭任务", reopen: "重启",
    },
    events: {
      create: "登记", dispatch: "派单", assign: "分派", accept: "接单", start: "开始处理", resolve: "办结",
      return: "退回", escalate: "上报", callback: "回访", close: "关闭", reopen: "重启", move: "移交网格",
      deadline: "调整时限", warn: "临期提醒", transfer: "改派",
    },
  },
  en: {
    close: "Close", loading: "Reading…", offline: "Offline: a task's page needs a connection; open it again online.",
    failed: "This task could not be read: ", gone: "That task is no longer in your lists (resolved, reassigned or moved to another grid?).",
    urgency: "Urgency", source: "Source", ticket: "12345 ticket", due: "Deadline", ticketDue: " (12345 hotline deadline)",
    overdue: "overdue", contactDue: "First contact by", contacted: "First contact", where: "Where", grid: "Grid",
    onMap: "On the map", what: "Request", withheld: "(a visit's follow-up: not for your role)", resident: "Contact",
    noContact: "No contact left", history: "History", note: "Note", noteHint: "What was done, why it is returned…",
    satisfaction: "Resident's satisfaction", chooseSatisfaction: "Choose", needsReason: "Say why the task is returned.",
    needsSatisfaction: "A callback records the resident's satisfaction.", lost: "No answer from the server: press again once online (it will not be done twice).", done: (a) => `${a}: done.`, by: "By", system: "system",
    assignee: "Assignee", unassigned: "unassigned",
    photos: "Photos", addPhoto: "Take or choose a photo", chosen: (n) => `${n} photo(s) chosen, sent with the step`, clearPhotos: "Clear the photos",
    uploading: (i, n) => `Uploading photo ${i} of ${n}…`, uploadFailed: "A photo could not be uploaded; the step was not sent: ", photo: "Photo",
    photoFailed: "The photo cannot be shown", oldPhotos: "Photo references (not uploaded here): ",
    satisfactions: { satisfied: "satisfied", basically_satisfied: "basically satisfied", unsatisfied: "unsatisfied" },
    actions: {
      accept: "Accept", start: "Start", resolve: "Resolve", return: "Return", escalate: "Escalate",
      callback: "Record the callback", close: "Close the task", reopen: "Reopen",
    },
    events: {
      create: "opened", dispatch: "dispatched", assign: "assigned", accept: "accepted", start: "started", resolve: "resolved",
      return: "returned", escalate: "escalated", callback: "called back", close: "closed", reopen: "reopened", move: "moved",
      deadline: "deadline changed", warn: "deadline near", transfer: "re-dispatched",
    },
  },
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
 * called after a step was taken (the lists are read again). Returns {open(id)}.
 */
export function taskDetail({ lang, dialog, localTime, changed }) {
  const t = TEXT[lang];
  const { statuses, urgencies, sources, types } = TASK_TEXT[lang];
  let shown = null; // the id of the task shown; a later open() replaces an earlier read
  let back = null; // what had the focus as the page opened (a task's title in a list)
  let chosen = []; // the photos chosen for the next step (File objects), until it is sent
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

  const say = (text, error = false) => {
    const status = dialog.querySelector(".task-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", error);
  };

  function frame(inner) {
    letGo();
    dialog.innerHTML = `<div class="task-detail"><button type="button" class="close" aria-label="${escapeHtml(t.close)}">×</button>${inner}
      <p class="task-status" role="status"></p></div>`;
  }

  const row = (label, html, cls = "") => `<tr class="${cls}"><th scope="row">${escapeHtml(label)}</th><td>${html}</td></tr>`;

  function draw(task, household) {
    const late = task.overdue;
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
      ? `<span class="muted">${escapeHtml(t.withheld)}</span>` : escapeHtml(task.description || "");
    const events = (task.events || []).slice().reverse().map((e) => `<li data-action="${escapeHtml(e.action)}">
      <span class="when">${escapeHtml(localTime(new Date(e.at)))}</span> <b>${escapeHtml(t.events[e.action] || e.action)}</b>
      ${e.to_status ? `<span class="muted">→ ${escapeHtml(statuses[e.to_status] || e.to_status)}</span>` : ""}
      ${e.note ? `<div class="event-note">${escapeHtml(e.note)}</div>` : ""}
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
    frame(`<h2 id="task-detail-title">${escapeHtml(task.title)}</h2>
      <p><span class="state">${escapeHtml(statuses[task.status] || task.status)}</span></p>
      <table class="plain facts"><tbody>
        ${row(t.urgency, escapeHtml(urgencies[task.urgency] || task.urgency))}
        ${row(t.source, escapeHtml([sources[task.source] || task.source, types[task.type] || task.type].filter(Boolean).join(" · ")))}
        ${task.external_id ? row(t.ticket, escapeHtml(task.external_id), "ticket") : ""}
        ${row(t.due, due, late ? "late" : "")}
        ${contact}
        ${row(t.assignee, escapeHtml(task.assignee_name || t.unassigned))}
        ${row(t.where, place + map, "where")}
        ${row(t.resident, resident, "resident")}
      </tbody></table>
      <h3>${escapeHtml(t.what)}</h3><p class="description">${what}</p>
      ${form}
      <h3>${escapeHtml(t.history)}</h3><ol class="events">${events}</ol>`);
    dialog.dataset.task = String(task.id);
    const stepsForm = dialog.querySelector("form.task-steps");
    stepsForm?.addEventListener("submit", (e) => {
      e.preventDefault();
      step(task, e.submitter?.value, e.target);
    });
    stepsForm?.elements.photo.addEventListener("change", (e) => {
      // Each shot of the camera is one choice: they add up until the step is sent.
      chosen = chosen.concat(Array.from(e.target.files || []));
      e.target.value = "";
      showChosen(stepsForm);
    });
    stepsForm?.querySelector("button.clear-photos").addEventListener("click", () => { chosen = []; showChosen(stepsForm); });
    showChosen(stepsForm);
    showThumbnails();
  }

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

  /** Upload the chosen photos; their ids, or null (said) when one failed: nothing is sent then.
   * A photo sent again (after a failure) is answered with the id it was given. */
  async function upload(task) {
    const ids = [];
    for (const [i, file] of chosen.entries()) {
      say(t.uploading(i + 1, chosen.length));
      const body = new FormData();
      body.append("file", file, file.name || "photo.jpg");
      try {
        ids.push((await api(`/api/v1/tasks/${task.id}/photos`, { method: "POST", body })).id);
      } catch (error) {
        say(t.uploadFailed + (error.status ? error.body?.detail || error.message : t.lost), true);
        return null;
      }
    }
    return ids;
  }

  async function step(task, action, form) {
    if (!action) return;
    const note = form.elements.note.value.trim();
    const satisfaction = form.elements.satisfaction?.value || "";
    if (action === "return" && !note) return say(t.needsReason, true);
    if (action === "callback" && !satisfaction) return say(t.needsSatisfaction, true);
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    const here = () => shown === task.id; // not closed, nor another task opened, meanwhile
    const photos = chosen.length ? await upload(task) : [];
    if (photos === null) {
      for (const button of form.querySelectorAll("button")) button.disabled = false;
      return;
    }
    const body = { action, note, ...(action === "callback" ? { satisfaction } : {}), ...(photos.length ? { photos } : {}) };
    try {
      // The same step sent again after a lost answer keeps its key: the server answers the first.
      // Asked of the task as read (`once`): after a re-dispatch the same step is a new one.
      await apiOnce(`/api/v1/tasks/${task.id}/transitions`, { method: "POST", body, once: task.updated_at });
    } catch (error) {
      for (const button of form.querySelectorAll("button")) button.disabled = false;
      if (!here()) return;
      if (![403, 404, 409].includes(error.status)) return say(error.status ? `${error.body?.detail || error.message}` : t.lost, true);
      // The task changed meanwhile (another step, a reassign, a move): its steps shown are
      // stale, each would be refused in turn. It is read again, and so are the lists.
      changed?.();
      const written = form.elements.note.value; // kept for the step taken now
      await open(task.id);
      if (!here()) return;
      const note = dialog.querySelector("form.task-steps textarea[name=note]");
      if (note) note.value = written;
      say(`${error.body?.detail || error.message}`, true);
      return;
    }
    chosen = [];
    changed?.();
    if (!here()) return;
    await open(task.id);
    if (here()) say(t.done(t.actions[action]));
  }

  async function open(id) {
    shown = id;
    if (!dialog.open) {
      back = document.activeElement;
      dialog.showModal();
    }
    if (!navigator.onLine) return frame(`<p class="muted">${escapeHtml(t.offline)}</p>`);
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
      return frame(`<p class="error">${escapeHtml(why)}</p>`);
    }
    if (shown !== id) return; // another task was opened meanwhile
    draw(task, household);
  }

  return { open };
}
