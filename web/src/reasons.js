// Why the server refused a visit, said in Chinese for the workers: one table of the sentences.
//
// - `codes`: a rejected batch item's `code` (api/services/visits.py `Refusal`); `{name}` is
//   filled from the result's field of that name;
// - `details`: a sentence added when the result carries that field;
// - `fields` and `messages`: an `invalid` item's field errors (`errors`, as VisitItemSchema of
//   api/resources/visits/schemas.py words them): the field's name, and the schema's own
//   messages (`{field}` is the field's name); a message not in the table is said as
//   `unmappedField`;
// - `problems`: a batch refused whole, by its RFC 9457 problem's type (the last part of
//   `type`, api/errors.py); "4xx" and "5xx" for a type not in the table that has no `detail`.
// - `grades`, `evidence` and `evidenceFigures`: a visit the server stored but graded as weak
//   evidence (its `evidence` in the batch answer: `grade`, `reasons`, `details`, as
//   geo/evidence.py gives them): the grade's word, a sentence per reason, and the figures put
//   in the sentence's `{figures}` when the server gave every number they name (`details`, or
//   one worked out from them: `evidenceFigures` below).
// - `evidenceShort`: each evidence reason in a few words, for the leaders' map (a visit's popup).
// tests/api/test_web.py holds the table to the server: every code, every problem type and every
// evidence reason the API can answer has its sentence. What is not in the table is shown in the
// server's words.
export const REASONS_ZH = {
  "codes": {
    "invalid": "记录内容不符合要求。",
    "not-an-object": "记录格式有误，服务器无法读取：请放弃这条记录后重新记录。",
    "household-not-found": "找不到这户，或这户不在您负责的网格内（可能已删除或已划入其他网格）。走访记录仍保存在本机，应用每隔几小时会自动重新发送：请网格长核实（如为您分配网格或排班替岗）；核实后也可点“修改”再保存，立即重新发送。请勿轻易放弃。",
    "location-invalid": "定位坐标无效（超出经纬度范围或经纬度颠倒）：请放弃这条记录，重新定位后再记录。",
    "outside-every-grid": "商户的位置不在任何网格内。",
    "not-your-grid": "商户所在的网格 {grid_code} 不是您的网格：走访当天该网格不由您负责，您也不是该网格排班的替岗人员。记录仍保存在本机，应用每隔几小时会自动重新发送：请网格长核实；核实后也可点“修改”再保存，立即重新发送。",
    "id-taken": "这条记录的编号已被另一条走访使用：请放弃它，重新记录一次。",
    "repeats-rejected-item": "与同一批中另一条被拒绝的记录重复。",
    "not-stored": "服务器这次没能保存这条记录。记录仍保存在本机，应用几小时后会自动重新发送；也可点“修改”后直接保存，立即重新发送。",
    "database-rule": "这条记录不符合数据规则，服务器无法保存：请修改或放弃。",
    "after-switch-off": "这条走访的时间在该工作人员账号停用之后，不能记在其名下。",
    "household-removed": "这户已于 {removed_on} 退出登记（已搬离、拆迁、停业或重复登记），此后的走访不再记录。记录仍保存在本机：如确属误操作，请网格长撤销退出后点“修改”再保存，重新发送；否则请放弃这条记录。"
  },
  "details": {
    "nearest_grid": "最近的网格是 {nearest_grid}，相距约 {distance_m} 米。"
  },
  "fields": {
    "_schema": "记录",
    "id": "记录编号",
    "household_id": "住户",
    "premises": "商户",
    "premises.building": "商户楼栋",
    "premises.unit": "商户单元",
    "premises.floor": "商户楼层",
    "premises.room": "商户门牌",
    "premises.kind": "商户类型",
    "premises.name": "商户名称",
    "premises.lon": "商户经度",
    "premises.lat": "商户纬度",
    "visited_at": "走访时间",
    "location": "定位",
    "location.lon": "定位经度",
    "location.lat": "定位纬度",
    "location.accuracy_m": "定位精度",
    "location.datum": "定位坐标系",
    "location.provider": "定位来源",
    "location.mock": "模拟定位标记",
    "outcome": "走访结果",
    "notes": "备注",
    "observations": "观察记录",
    "follow_up": "需要跟进",
    "follow_up_note": "跟进事项",
    "follow_up_kind": "跟进清单（需求或问题）",
    "follow_up_title": "跟进事项标题",
    "follow_up_urgency": "跟进紧急程度"
  },
  "messages": {
    "The time must fall in the weeks served, 2000-W01 to 2999-W52 (ISO weeks, Asia/Shanghai).": "走访时间不在系统受理的范围内（2000 年至 2999 年），手机日期可能有误：请校正手机时间，放弃这条记录后重新记录。",
    "The UTC offset must be a whole number of minutes.": "走访时间的时区不是整分钟，手机的时间设置可能有误：请校正后放弃这条记录并重新记录。",
    "Must not contain NUL characters.": "{field}含有不能保存的空字符。",
    "Must not contain control characters or bidirectional overrides.": "{field}含有不能保存的控制字符。",
    "Must not be blank.": "{field}不能是空白。",
    "A follow-up needs a description.": "勾选“需要跟进”时必须填写跟进事项。",
    "Give exactly one of household_id and premises.": "一条走访记录只能对应一户住户或一个商户。",
    "Give both lon and lat, or neither.": "商户的经度和纬度要么都填，要么都不填。",
    "Missing data for required field.": "缺少{field}。"
  },
  "unmappedField": "{field}的内容不符合要求。",
  "problems": {
    "bad-request": "服务器无法读取这批记录（格式有误）。",
    "unauthorized": "登录已失效，请重新登录。",
    "token-expired": "登录已过期，请重新登录。",
    "forbidden": "只有网格员和网格长可以记录走访，这个账号的走访记录无法同步。",
    "password-change-required": "管理员为您设置了密码：请先设置您自己的新密码，再同步走访记录。",
    "account-switched-off": "此账号已停用：请联系社区管理员重新启用。",
    "stored-data-damaged": "服务器上保存的数据已损坏，请联系社区管理员。",
    "not-found": "服务器上找不到同步地址，应用可能需要更新。",
    "method-not-allowed": "服务器不接受这种请求，应用可能需要更新。",
    "not-acceptable": "服务器无法按应用要求的格式回答，应用可能需要更新。",
    "conflict": "这批记录与同时进行的另一项修改冲突：记录仍保存在本机，请稍后再同步。",
    "payload-too-large": "这批记录太大，服务器拒收。",
    "unsupported-media-type": "服务器不接受这种数据格式，应用可能需要更新。",
    "unprocessable": "这批记录中有不符合规则的内容。",
    "validation": "这批记录的格式不符合服务器的要求，应用可能需要更新。",
    "too-many-requests": "请求过于频繁：记录仍保存在本机，请稍后再同步。",
    "service-unavailable": "服务器暂时不可用：记录仍保存在本机，请稍后再同步。",
    "statement-timeout": "服务器处理超时：记录仍保存在本机，请稍后再同步。",
    "data-key": "服务器的数据密钥配置有误，请联系管理员：记录仍保存在本机。",
    "schema": "服务器正在升级：记录仍保存在本机，请稍后再同步。",
    "internal": "服务器内部出错：记录仍保存在本机，请稍后再同步。",
    "4xx": "服务器拒收了这批记录。",
    "5xx": "服务器暂时出错：记录仍保存在本机，请稍后再同步。"
  },
  "grades": {
    "doubtful": "存疑",
    "suspect": "可疑"
  },
  "evidence": {
    "mock_location": "手机报告这次定位是模拟定位：请关闭虚拟定位软件或开发者选项中的模拟位置后再记录。",
    "no_accuracy": "手机没有报告定位精度，无法确认位置：请开启高精度定位（GPS）后再记录。",
    "poor_accuracy": "定位精度较差{figures}：请在室外或窗边等定位稳定后再记录。",
    "bad_accuracy": "定位精度很差{figures}，无法确认位置：请在室外或窗边等定位稳定后再记录。",
    "outside_grid": "定位在您的网格之外{figures}：请在住户门口定位并记录。",
    "far_from_household": "定位离这户较远{figures}：请在住户门口定位并记录。",
    "very_far_from_household": "定位离这户很远{figures}，不像在这户走访：请在住户门口定位并记录。",
    "impossible_speed": "与您前后一次走访的位置和时间对不上{figures}：请每户走访时当场定位并记录。",
    "future_time": "走访时间比服务器收到记录的时间还晚{figures}，手机时间可能不准：请校正手机时间。",
    "stale": "记录在走访很久之后才同步{figures}（或手机日期有误）：请及时联网同步，并检查手机日期。"
  },
  "evidenceShort": {
    "mock_location": "模拟定位",
    "no_accuracy": "无定位精度",
    "poor_accuracy": "定位精度较差",
    "bad_accuracy": "定位精度很差",
    "outside_grid": "定位在网格外",
    "far_from_household": "离住户较远",
    "very_far_from_household": "离住户很远",
    "impossible_speed": "与前后走访的时间地点对不上",
    "future_time": "走访时间晚于收到时间",
    "stale": "同步过晚"
  },
  "evidenceFigures": {
    "poor_accuracy": "（误差约 {accuracy_m} 米）",
    "bad_accuracy": "（误差约 {accuracy_m} 米）",
    "outside_grid": "（离网格边界约 {distance_to_grid_m} 米）",
    "far_from_household": "（约 {distance_to_household_m} 米）",
    "very_far_from_household": "（约 {distance_to_household_m} 米）",
    "impossible_speed": "（要每小时约 {speed_kmh} 公里才赶得到）",
    "future_time": "（快了约 {minutes_ahead} 分钟）",
    "stale": "（相隔约 {days_late} 天）"
  }
};

const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));

/** The field errors of `errors` (marshmallow's nesting) as [dotted path, message] pairs. */
function flatten(errors, path = []) {
  if (Array.isArray(errors) && errors.every((m) => typeof m === "string")) {
    return errors.map((message) => [path.join("."), message]);
  }
  if (errors && typeof errors === "object") {
    return Object.entries(errors).flatMap(([key, inner]) => flatten(inner, [...path, key]));
  }
  return [[path.join("."), String(errors)]];
}

/** A field's Chinese name: its path's, else the nearest enclosing field's (a care tag's key in
 * `observations.mood.key` is the observations'). */
function fieldName(path) {
  const parts = path.split(".");
  for (let n = parts.length; n > 0; n--) {
    const name = REASONS_ZH.fields[parts.slice(0, n).join(".")];
    if (name) return name;
  }
  return path;
}

/**
 * A rejected batch result (`{code, reason, errors, ...}`) said in Chinese, or null when its
 * code is not in the table (an older record holds only `reason`): then the server's words are
 * all there is.
 */
export function refusalZh(result) {
  const code = result?.code;
  if (code === "invalid" && result.errors && typeof result.errors === "object") {
    const lines = flatten(result.errors).map(([path, message]) =>
      fill(REASONS_ZH.messages[message] ?? REASONS_ZH.unmappedField, { field: fieldName(path) }));
    if (lines.length) return [...new Set(lines)].join("");
  }
  const sentence = REASONS_ZH.codes[code];
  if (!sentence) return null;
  let text = fill(sentence, result);
  for (const [name, detail] of Object.entries(REASONS_ZH.details)) {
    if (result[name] != null) text += fill(detail, result);
  }
  return text;
}

/**
 * Why the server refused a whole batch (an HTTP `status` with its problem `body`) in Chinese:
 * by the problem's type; a type not in the table is said in the server's `detail` (null here),
 * or by its status class when it has none.
 */
export function problemZh(status, body) {
  const type = typeof body?.type === "string" ? body.type.split("/").pop() : "";
  if (REASONS_ZH.problems[type]) return REASONS_ZH.problems[type];
  if (body?.detail) return null;
  return REASONS_ZH.problems[status >= 500 ? "5xx" : "4xx"];
}

/** The numbers of a visit's evidence `details` as a sentence shows them: metres whole, and the
 * figures worked out from them (a speed in km/h, minutes ahead, days late). Absent or null
 * numbers stay absent. */
function evidenceFigures(details) {
  const values = {};
  for (const [name, value] of Object.entries(details || {})) {
    if (typeof value === "number" && Number.isFinite(value)) values[name] = Math.round(value);
  }
  const speeds = [details?.speed_to_previous_mps, details?.speed_to_next_mps].filter((v) => typeof v === "number" && Number.isFinite(v));
  if (speeds.length) values.speed_kmh = Math.round(Math.max(...speeds) * 3.6);
  const delay = details?.delay_s;
  if (typeof delay === "number" && Number.isFinite(delay)) {
    if (delay < 0) values.minutes_ahead = Math.max(1, Math.round(-delay / 60));
    else values.days_late = Math.floor(delay / 86400);
  }
  return values;
}

// The evidence words in English, keyed as REASONS_ZH's (the app and the map in English said
// the server's codes: "outside_grid, very_far_from_household").
export const EVIDENCE_EN = {
  "grades": { "doubtful": "doubtful", "suspect": "suspect" },
  "evidence": {
    "mock_location": "The phone reported a mock location: switch off the fake-location app (or the developer option), then record again.",
    "no_accuracy": "The phone reported no accuracy for the fix, so the place cannot be confirmed: switch on high-accuracy location (GPS), then record again.",
    "poor_accuracy": "A poor fix{figures}: record outdoors or by a window once the position settles.",
    "bad_accuracy": "A very poor fix{figures}, so the place cannot be confirmed: record outdoors or by a window once the position settles.",
    "outside_grid": "The fix lies outside your grid{figures}: record at the household's door.",
    "far_from_household": "The fix is far from the household{figures}: record at its door.",
    "very_far_from_household": "The fix is very far from the household{figures}, not like a visit there: record at its door.",
    "impossible_speed": "The place and time do not fit your visits before and after{figures}: record each visit at the door, as you make it.",
    "future_time": "The visit's time is later than when the server received it{figures}; the phone's clock may be wrong: set it right.",
    "stale": "Synced long after the visit{figures} (or the phone's date is wrong): sync as soon as you are online, and check the date."
  },
  "evidenceShort": {
    "mock_location": "mock location",
    "no_accuracy": "no accuracy",
    "poor_accuracy": "poor accuracy",
    "bad_accuracy": "very poor accuracy",
    "outside_grid": "outside the grid",
    "far_from_household": "far from the household",
    "very_far_from_household": "very far from the household",
    "impossible_speed": "does not fit the visits before and after",
    "future_time": "later than received",
    "stale": "synced late"
  },
  "evidenceFigures": {
    "poor_accuracy": " (about {accuracy_m} m off)",
    "bad_accuracy": " (about {accuracy_m} m off)",
    "outside_grid": " (about {distance_to_grid_m} m past the grid's edge)",
    "far_from_household": " (about {distance_to_household_m} m)",
    "very_far_from_household": " (about {distance_to_household_m} m)",
    "impossible_speed": " (it would take about {speed_kmh} km/h)",
    "future_time": " (about {minutes_ahead} min ahead)",
    "stale": " (about {days_late} days apart)"
  }
};
const EVIDENCE = { zh: REASONS_ZH, en: EVIDENCE_EN };

/** An evidence reason in a few words (`far_from_household`: 离住户较远, far from the
 * household), or the code itself. */
export function evidenceShort(reason, lang = "zh") {
  return EVIDENCE[lang].evidenceShort[reason] ?? reason;
}

/** A grade's word (`doubtful`: 存疑), or null for one not in the table. */
export function gradeWord(grade, lang = "zh") {
  return EVIDENCE[lang].grades[grade] ?? null;
}

/**
 * Why the server counts a stored visit's evidence as weak, in `lang`: {grade, lines}, `grade`
 * the grade's word and `lines` one sentence per reason the table knows (with its figures where
 * the server gave them); null for an `ok` visit or one without evidence. A reason not in the
 * table is left to the caller, which has the server's codes.
 */
export function evidenceWords(evidence, lang = "zh") {
  if (!evidence || !evidence.grade || evidence.grade === "ok") return null;
  const words = EVIDENCE[lang];
  const values = evidenceFigures(evidence.details);
  const lines = [];
  for (const reason of evidence.reasons || []) {
    const sentence = words.evidence[reason];
    if (!sentence) continue;
    const figures = words.evidenceFigures[reason] || "";
    const named = [...figures.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const shown = named.every((name) => values[name] != null) ? fill(figures, values) : "";
    lines.push(sentence.replace("{figures}", shown));
  }
  return { grade: words.grades[evidence.grade] || evidence.grade, lines };
}
