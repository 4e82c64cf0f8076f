// 上报问题（巡查发现）: a problem a worker or leader finds on the rounds (a blocked drain, a loose
// railing, a lamp out) opened as a task before anyone calls 12345 (未诉先办). The API took such
// tasks (source `proactive`) and the app offered none: a problem seen outside a visit had no way
// in but a call. POST /api/v1/tasks, placed where the phone stands (or at a household chosen),
// dispatched as every task (to the grid's worker on duty, else …); online only, sent with an
// Idempotency-Key kept, with the same place, until an answer comes (pressed again after a lost
// answer, one task is opened).
import { TASK_TEXT, apiOnce, escapeHtml } from "./common.js";

const TEXT = {
  zh: {
    title: "上报问题（巡查发现）", what: "问题", whatHint: "例如：3号楼前雨水井堵塞", detail: "详细情况",
    urgency: "紧急程度", where: "位置", here: "我现在的位置", household: "住户", send: "上报",
    locating: "正在定位…", sending: "正在上报…", needTitle: "请写明问题。",
    noFix: "无法定位（未授权或信号弱）：请改选住户，或稍后再试。",
    created: (id, who, due) => `已上报任务 #${id}，派给 ${who}，期限 ${due}。`, nobody: "待分派",
    lost: "没有收到服务器的答复：请联网后再按一次（不会重复上报）。", refused: "未上报：",
  },
  en: {
    title: "Report a problem (found on the rounds)", what: "Problem", whatHint: "e.g. the drain outside building 3 is blocked",
    detail: "Details", urgency: "Urgency", where: "Where", here: "Where I stand now", household: "Household",
    send: "Report", locating: "Locating…", sending: "Sending…", needTitle: "Say what the problem is.",
    noFix: "No position (not allowed, or a weak signal): choose a household, or try again later.",
    created: (id, who, due) => `Task #${id} reported, given to ${who}, due ${due}.`, nobody: "nobody yet",
    lost: "No answer from the server: press again once online (it will not be reported twice).", refused: "Not reported: ",
  },
};
const URGENCIES = ["general", "utility", "danger", "complex"];

/**
 * The card in `section`. `households()` lists the caller's households ({id, label}) for the
 * place, `locate()` is the app's position fix (a GeolocationPosition), `localTime(date)` a
 * time as the app shows it, `opened(task)` is called with each task opened.
 */
export function reportProblem({ lang, section, households, locate, localTime, opened }) {
  const t = TEXT[lang];
  const { urgencies } = TASK_TEXT[lang];
  section.innerHTML = `<h2>${escapeHtml(t.title)}</h2>
    <form class="report-problem" novalidate>
      <label>${escapeHtml(t.what)} <input name="title" maxlength="200" required placeholder="${escapeHtml(t.whatHint)}"></label>
      <label>${escapeHtml(t.detail)} <textarea name="description" rows="2" maxlength="10000"></textarea></label>
      <label>${escapeHtml(t.urgency)} <select name="urgency">${URGENCIES.map((u) => `<option value="${u}">${escapeHtml(urgencies[u])}</option>`).join("")}</select></label>
      <fieldset><legend>${escapeHtml(t.where)}</legend>
        <label class="inline"><input type="radio" name="where" value="here" checked> ${escapeHtml(t.here)}</label>
        <label class="inline"><input type="radio" name="where" value="household"> ${escapeHtml(t.household)}</label>
        <select name="household_id" aria-label="${escapeHtml(t.household)}" hidden></select>
      </fieldset>
      <button type="submit">${escapeHtml(t.send)}</button>
      <p class="status" role="status"></p>
    </form>`;
  const form = section.querySelector("form");
  const status = form.querySelector(".status");
  const choice = form.elements.household_id;
  const say = (text, error = false) => {
    status.textContent = text;
    status.classList.toggle("error", error);
  };
  form.addEventListener("change", (e) => {
    if (e.target.name !== "where") return;
    const atHousehold = form.elements.where.value === "household";
    if (atHousehold) {
      choice.innerHTML = households().map((h) => `<option value="${h.id}">${escapeHtml(h.label)}</option>`).join("");
    }
    choice.hidden = !atHousehold;
  });

  // The request sent and not answered: sent again as it was (its place too) while the form is
  // unchanged, so its key is the same and the server opens one task.
  let unanswered = null;
  let sending = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (sending) return;
    const fields = {
      title: form.elements.title.value.trim(),
      description: form.elements.description.value.trim(),
      urgency: form.elements.urgency.value,
      where: form.elements.where.value,
      household_id: form.elements.where.value === "household" ? Number(choice.value) || null : null,
    };
    if (!fields.title) {
      form.elements.title.classList.add("invalid");
      return say(t.needTitle, true);
    }
    form.elements.title.classList.remove("invalid");
    const asked = JSON.stringify(fields);
    sending = true;
    form.querySelector("button[type=submit]").disabled = true;
    try {
      let body = unanswered?.asked === asked ? unanswered.body : null;
      if (!body) {
        body = { source: "proactive", title: fields.title, description: fields.description, urgency: fields.urgency };
        if (fields.where === "household") {
          if (!fields.household_id) return say(t.noFix, true);
          body.household_id = fields.household_id;
        } else {
          say(t.locating);
          let fix;
          try {
            fix = await locate();
          } catch {
            return say(t.noFix, true);
          }
          body.location = { lon: fix.coords.longitude, lat: fix.coords.latitude };
        }
      }
      unanswered = { asked, body };
      say(t.sending);
      let task;
      try {
        task = await apiOnce("/api/v1/tasks", { method: "POST", body });
      } catch (error) {
        if (!error.status || error.status >= 500) return say(t.lost, true);
        unanswered = null; // refused: nothing was opened
        const detail = error.body?.detail || error.message;
        const more = Object.values(error.body?.errors?.json || {}).flat().filter((m) => !detail.includes(m));
        return say(`${t.refused}${[detail, ...more].join(" ")}`, true);
      }
      unanswered = null;
      form.reset();
      choice.hidden = true;
      say(t.created(task.id, task.assignee_name || t.nobody, localTime(new Date(task.due_at))));
      opened?.(task);
    } finally {
      sending = false;
      form.querySelector("button[type=submit]").disabled = false;
    }
  });
}
