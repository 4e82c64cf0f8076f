// 上报问题（巡查发现）: a problem a worker or leader finds on the rounds (a blocked drain, a loose
// railing, a lamp out) opened as a task before anyone calls 12345 (未诉先办). The API took such
// tasks (source `proactive`) and the app offered none: a problem seen outside a visit had no way
// in but a call. POST /api/v1/tasks, placed where the phone stands (or at a household chosen),
// dispatched as every task (to the grid's worker on duty, else …).
//
// Offline first, as visits are: a report is kept on the phone (IndexedDB, the meta store's
// `reports`) with its Idempotency-Key and the place and time captured when it was made, before
// it is sent. Made offline, or its answer lost (no connection, a 5xx), it stays there, listed as
// 待发送, and goes with the app's syncs (back online, 立即同步, the app opened again) with the same
// key and body: the server answers a retry with the first task, never a second. Online only,
// it was lost with the page when no answer came, and a reload sent it again under a new key.
// A refusal (a 4xx: outside every grid, the household gone) is the report's own: kept, listed
// with the server's words, for the worker to fix or discard; never dropped without a word.
import {
  api, carriedOut, escapeHtml, getToken, newIdempotencyKey, oneAtATime, refusalWords, noAnswer, urgencyOption,
} from "./common.js";
import { META, getMeta, run, setMeta } from "./idb.js";
import { tokenUser } from "./session.js";

const TEXT = {
  zh: {
    title: "上报问题（巡查发现）", what: "问题", whatHint: "例如：3号楼前雨水井堵塞", detail: "详细情况",
    urgency: "紧急程度", where: "位置", here: "我现在的位置", household: "住户", send: "上报",
    list: "记入清单", lists: { problem: "问题清单", need: "需求清单（居民的诉求）", "": "不记入" },
    locating: "正在定位…", sending: "正在上报…", needTitle: "请写明问题。",
    noFix: "无法定位（未授权或信号弱）：请改选住户，或稍后再试。",
    created: (id, who, due) => `已上报任务 #${id}，派给 ${who}，期限 ${due}。`, nobody: "待分派",
    lost: "没有收到服务器的答复：已保存在本机，待发送，会自动再发（不会重复上报）。", refused: "未上报：",
    queued: "离线：已保存在本机，待发送，联网后自动上报。", waiting: "待发送",
    notKept: "本机无法保存这条上报（存储空间不足或被禁用）：请联网后上报。",
    capturedAt: (time) => `记录于 ${time}`, fix: "修改", discard: "放弃",
    discardConfirm: (title) => `放弃这条上报？“${title}”将从本机删除，不会上报。`,
    fixing: "请修改后再按“上报”（原上报在修改后的上报保存后删除）。",
    sentMany: (n) => `已上报 ${n} 条待发送的问题。`,
    carriedOut: "已上报：服务器已开立任务，但未能传回其编号，请在任务列表中查看。",
    refusedKept: (n) => `有 ${n} 条上报未被接受：原因见下方，可修改或放弃。`,
  },
  en: {
    title: "Report a problem (found on the rounds)", what: "Problem", whatHint: "e.g. the drain outside building 3 is blocked",
    detail: "Details", urgency: "Urgency", where: "Where", here: "Where I stand now", household: "Household",
    list: "On the list", lists: { problem: "problem list", need: "need list (a resident's wish)", "": "on no list" },
    send: "Report", locating: "Locating…", sending: "Sending…", needTitle: "Say what the problem is.",
    noFix: "No position (not allowed, or a weak signal): choose a household, or try again later.",
    created: (id, who, due) => `Task #${id} reported, given to ${who}, due ${due}.`, nobody: "nobody yet",
    lost: "No answer from the server: kept on this phone, waiting to send; it is sent again by itself (never reported twice).",
    refused: "Not reported: ",
    queued: "Offline: kept on this phone, waiting to send; it is reported once online.", waiting: "Waiting to send",
    notKept: "This phone cannot keep the report (no room, or storage refused): report it once online.",
    capturedAt: (time) => `recorded ${time}`, fix: "Fix", discard: "Discard",
    discardConfirm: (title) => `Discard this report? "${title}" is deleted from this phone and not reported.`,
    fixing: "Fix it and press Report (the refused one is deleted once the fixed one is kept).",
    sentMany: (n) => `${n} waiting reports sent.`,
    carriedOut: "Reported: the server opened the task but could not send back its number; find it in the task lists.",
    refusedKept: (n) => `${n} report${n === 1 ? " was" : "s were"} not accepted: see why below, to fix or discard.`,
  },
};
const URGENCIES = ["general", "utility", "danger", "complex"];
// A report is a request for help (未诉先办: no resident asked): the request type whose deadlines
// the community's settings give it, sent as such so the task is given what its label said.
const REPORT_TYPE = "help";
// The hours each urgency gives a report in the signed-in user's community ({user, community,
// hours}), read when online and kept for the rounds without a signal (the meta store: a
// sign-out empties it). Until read, the labels say Beijing 12345 practice.
const DEADLINES_KEY = "reportDeadlines";


// The reports kept on this phone, of whichever user (a report goes only under its own worker's
// token: the server files it under the caller), each {key, user, state: "pending"|"refused",
// body (as sent, so a retry is the same request under the same key), fields (as typed, to fix),
// place, capturedAt, refusal}. In the meta store, which a sign-out empties with the visit queue.
export const REPORTS_KEY = "reports";

/** Every report kept on this phone, oldest first. */
export async function listReports() {
  return (await getMeta(REPORTS_KEY)) || [];
}

/** Change the kept list in one transaction (two tabs may send at once: neither's write is lost). */
function changeReports(change) {
  return run(META, "readwrite", (meta) => {
    const read = meta.get(REPORTS_KEY);
    read.onsuccess = () => meta.put(change(read.result || []), REPORTS_KEY);
  });
}
const keep = (record) => changeReports((list) => [...list.filter((r) => r.key !== record.key), record]);
const drop = (key) => changeReports((list) => list.filter((r) => r.key !== key));

// A report waits while its sends get no answer (`noAnswer`); a 409 of its key saying it was
// carried out (ANSWER_LOST) is done; every other 4xx is the report's own: refused whole,
// nothing opened on the server.
//
// The task a report opened whose answer the server cannot give: its key's 409 says the request
// was carried out (api/idempotency.py: a twin still answering, or a crash before the answer was
// kept). Done: sent again until the server forgot the key (24 hours), it opened a second task.
const ANSWER_LOST = Object.freeze({});

/** Send one kept report with its key: {task} (ANSWER_LOST: opened, unanswered), {refusal} (a
 * 4xx) or {error} (to send again). */
async function sendOne(record) {
  try {
    return { task: await api("/api/v1/tasks", { method: "POST", body: record.body, headers: { "Idempotency-Key": record.key } }) };
  } catch (error) {
    if (carriedOut(error)) return { task: ANSWER_LOST };
    return noAnswer(error) ? { error } : { refusal: refusalWords(error) };
  }
}

/**
 * Send the signed-in user's pending reports, one by one with their own keys: opened ones leave
 * the phone, refused ones stay (state "refused", with the server's words), the rest wait (the
 * first that gets no answer ends the pass: the next would get none either). One pass at a time
 * (`oneAtATime`). Answers {opened: [{record, task}], refused:
 * [{record, refusal}], error} (`error`: why the reports left waiting were not sent).
 */
export const sendReports = oneAtATime(sendPass);

async function sendPass() {
  const user = tokenUser(getToken());
  const outcome = { opened: [], refused: [], error: null };
  if (!user) return outcome;
  const mine = (await listReports()).filter((r) => r.user === user && r.state === "pending");
  for (const record of mine) {
    const { task, refusal, error } = await sendOne(record);
    if (error) {
      outcome.error = error;
      break;
    }
    if (task) {
      await drop(record.key);
      outcome.opened.push({ record, task });
    } else {
      // Kept for the worker only while it is (discarded meanwhile in another tab: gone).
      await changeReports((list) => list.map((r) => (r.key === record.key ? { ...r, state: "refused", refusal, refusedAt: Date.now() } : r)));
      outcome.refused.push({ record, refusal });
    }
  }
  return outcome;
}

/**
 * The card in `section`. `households()` lists the caller's households ({id, label}) for the
 * place, `locate()` is the app's position fix ({lon, lat, accuracy_m, coarse}), `localTime(date)` a
 * time as the app shows it, `opened(task)` is called with each task opened, `labelled(hours)`
 * with the hours by urgency the community gives a help request (kept on the phone for the
 * user; null unknown) each time the urgencies are labelled. Answers
 * {show, sendWaiting, useCommunity}: `show()` lists the signed-in user's kept reports;
 * `sendWaiting()` sends them (the app's syncs), says what came of it and throws why those left
 * waiting were not sent; `useCommunity(code)` reads the user's community's deadlines, which
 * label the urgencies.
 */
export function reportProblem({ lang, section, households, locate, localTime, opened, labelled = () => {} }) {
  const t = TEXT[lang];
  section.innerHTML = `<h2>${escapeHtml(t.title)}</h2>
    <form class="report-problem" novalidate>
      <label>${escapeHtml(t.what)} <input name="title" maxlength="200" required placeholder="${escapeHtml(t.whatHint)}"></label>
      <label>${escapeHtml(t.detail)} <textarea name="description" rows="2" maxlength="10000"></textarea></label>
      <label>${escapeHtml(t.urgency)} <select name="urgency">${URGENCIES.map((u) => `<option value="${u}">${escapeHtml(urgencyOption(lang, u))}</option>`).join("")}</select></label>
      <label>${escapeHtml(t.list)} <select name="list">${Object.entries(t.lists).map(([v, label]) => `<option value="${v}">${escapeHtml(label)}</option>`).join("")}</select></label>
      <fieldset><legend>${escapeHtml(t.where)}</legend>
        <label class="inline"><input type="radio" name="where" value="here" checked> ${escapeHtml(t.here)}</label>
        <label class="inline"><input type="radio" name="where" value="household"> ${escapeHtml(t.household)}</label>
        <select name="household_id" aria-label="${escapeHtml(t.household)}" hidden></select>
      </fieldset>
      <button type="submit">${escapeHtml(t.send)}</button>
      <p class="status" role="status"></p>
    </form>
    <ul class="report-outbox"></ul>`;
  const form = section.querySelector("form");
  const status = form.querySelector(".status");
  const choice = form.elements.household_id;
  const outbox = section.querySelector(".report-outbox");
  const say = (text, error = false) => {
    status.textContent = text;
    status.classList.toggle("error", error);
  };
  const fillChoice = () => {
    choice.innerHTML = households().map((h) => `<option value="${h.id}">${escapeHtml(h.label)}</option>`).join("");
  };
  form.addEventListener("change", (e) => {
    if (e.target.name !== "where") return;
    const atHousehold = form.elements.where.value === "household";
    if (atHousehold) fillChoice();
    choice.hidden = !atHousehold;
  });
  const cleared = () => {
    form.reset();
    choice.hidden = true;
    fixing = null;
  };
  const createdText = (task) => task === ANSWER_LOST ? t.carriedOut : t.created(task.id, task.assignee_name || t.nobody, localTime(new Date(task.due_at)));

  /** Each urgency with the hours it gives a report: the community's as kept for this user. */
  async function labelUrgencies() {
    const kept = await getMeta(DEADLINES_KEY).catch(() => null);
    const mine = kept && kept.user === tokenUser(getToken()) ? kept : null;
    for (const option of form.elements.urgency.options) option.textContent = urgencyOption(lang, option.value, mine?.hours[option.value]);
    labelled(mine?.hours || null); // a visit's follow-up is a help request too: its form's labels
    if (mine) form.dataset.deadlines = mine.community;
    else delete form.dataset.deadlines;
  }

  /** Read the deadlines of the signed-in user's community (`community`), keep and show them;
   * unread (offline, an error), the labels stay as they were: the server gives the deadline. */
  async function useCommunity(community) {
    let settings;
    try {
      settings = await api(`/api/v1/communities/${encodeURIComponent(community)}/task-settings`);
    } catch {
      return;
    }
    const hours = settings.effective?.[REPORT_TYPE]?.deadline_hours;
    if (!hours) return;
    await setMeta(DEADLINES_KEY, { user: tokenUser(getToken()), community, hours }).catch(() => {});
    await labelUrgencies();
  }

  async function show() {
    labelUrgencies().catch(() => {});
    const user = tokenUser(getToken());
    const mine = user ? (await listReports().catch(() => [])).filter((r) => r.user === user) : [];
    outbox.innerHTML = mine.map((r) => {
      const when = escapeHtml(t.capturedAt(localTime(new Date(r.capturedAt))));
      const what = `${escapeHtml(r.fields.title)} · ${escapeHtml(r.place)} · ${when}`;
      if (r.state === "refused") {
        return `<li class="refused" data-key="${escapeHtml(r.key)}"><strong>${escapeHtml(t.refused)}</strong>${escapeHtml(r.refusal)}<br>${what}
          <button type="button" data-fix>${escapeHtml(t.fix)}</button> <button type="button" data-discard>${escapeHtml(t.discard)}</button></li>`;
      }
      return `<li class="waiting" data-key="${escapeHtml(r.key)}"><strong>${escapeHtml(t.waiting)}</strong> · ${what}</li>`;
    }).join("");
  }

  // A refused report being fixed in the form: it stays kept until the fixed one is.
  let fixing = null;
  outbox.addEventListener("click", async (e) => {
    const item = e.target.closest("li[data-key]");
    const record = item && (await listReports()).find((r) => r.key === item.dataset.key);
    if (!record) return;
    if (e.target.closest("button[data-discard]")) {
      if (!confirm(t.discardConfirm(record.fields.title))) return;
      await drop(record.key);
      if (fixing === record.key) fixing = null;
      await show();
    } else if (e.target.closest("button[data-fix]")) {
      const { fields } = record;
      form.elements.title.value = fields.title;
      form.elements.description.value = fields.description;
      form.elements.urgency.value = fields.urgency;
      form.elements.list.value = fields.list || ""; // kept before lists: on none, as sent then
      form.elements.where.value = fields.where;
      const atHousehold = fields.where === "household";
      if (atHousehold) {
        fillChoice();
        choice.value = String(fields.household_id);
      }
      choice.hidden = !atHousehold;
      fixing = record.key;
      say(t.fixing);
      form.scrollIntoView();
    }
  });

  // What the app's syncs sent, said: the tasks opened, the reports refused (listed below).
  async function sendWaiting() {
    const { opened: done, refused, error } = await sendReports();
    if (refused.length) say(t.refusedKept(refused.length), true);
    else if (done.length === 1) say(createdText(done[0].task));
    else if (done.length) say(t.sentMany(done.length));
    for (const { task } of done) opened?.(task);
    await show();
    if (error) throw error;
  }

  let sending = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (sending) return;
    const fields = {
      title: form.elements.title.value.trim(),
      description: form.elements.description.value.trim(),
      urgency: form.elements.urgency.value,
      list: form.elements.list.value,
      where: form.elements.where.value,
      household_id: form.elements.where.value === "household" ? Number(choice.value) || null : null,
    };
    if (!fields.title) {
      form.elements.title.classList.add("invalid");
      return say(t.needTitle, true);
    }
    form.elements.title.classList.remove("invalid");
    say(""); // what was said before (a report fixed, the last one sent) is not this one's answer
    sending = true;
    form.querySelector("button[type=submit]").disabled = true;
    try {
      // The place and time are captured now, as the worker stands there: sent later, the
      // report is still where and when it was seen.
      const body = { source: "proactive", type: REPORT_TYPE, title: fields.title, description: fields.description, urgency: fields.urgency };
      if (fields.list) body.list = fields.list; // the problem list unless the worker chose otherwise
      let place;
      if (fields.where === "household") {
        if (!fields.household_id) return say(t.noFix, true);
        body.household_id = fields.household_id;
        place = choice.selectedOptions[0]?.textContent || `${t.household} ${fields.household_id}`;
      } else {
        say(t.locating);
        let fix;
        try {
          fix = await locate();
        } catch {
          return say(t.noFix, true);
        }
        body.location = { lon: fix.lon, lat: fix.lat };
        place = `${t.here} (${body.location.lon.toFixed(5)}, ${body.location.lat.toFixed(5)})`;
      }
      const record = {
        key: newIdempotencyKey(), user: tokenUser(getToken()), state: "pending", body, fields, place,
        capturedAt: new Date().toISOString(),
      };
      // Kept before it is sent: a page lost on the way (reloaded, the phone killed) still has it.
      const kept = await keep(record).then(() => true, () => false);
      if (kept && fixing) await drop(fixing).catch(() => {});
      if (kept) fixing = null;
      if (!navigator.onLine) {
        if (!kept) return say(t.notKept, true);
        cleared();
        say(t.queued);
        return;
      }
      say(t.sending);
      let answer;
      if (kept) {
        const outcome = await sendReports();
        for (const o of outcome.opened) if (o.record.key !== record.key) opened?.(o.task); // others waiting
        const mine = outcome.opened.find((o) => o.record.key === record.key);
        const refused = outcome.refused.find((o) => o.record.key === record.key);
        answer = mine ? { task: mine.task } : refused ? { refusal: refused.refusal } : { error: outcome.error || new Error("kept") };
        // Sent by a sync on its way meanwhile (which said so): nothing left here to send.
        if (!mine && !refused && !(await listReports()).some((r) => r.key === record.key)) {
          cleared();
          return;
        }
      } else {
        answer = await sendOne(record);
        if (answer.error) return say(t.notKept, true);
      }
      if (answer.task) {
        cleared();
        say(createdText(answer.task));
        opened?.(answer.task);
      } else if (answer.refusal !== undefined) {
        // Refused as the worker sent it: the form still holds it, to fix (at a household, say)
        // or leave; the phone need not keep it twice.
        await drop(record.key).catch(() => {});
        say(`${t.refused}${answer.refusal}`, true);
      } else {
        cleared();
        say(t.lost, true);
      }
    } finally {
      sending = false;
      form.querySelector("button[type=submit]").disabled = false;
      await show();
    }
  });

  return { show, sendWaiting, useCommunity };
}
