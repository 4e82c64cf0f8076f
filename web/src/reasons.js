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
// tests/api/test_web.py holds the table to the server: every code and every problem type the
// API can answer has its sentence. What is not in the table is shown in the server's words.
export const REASONS_ZH = {
  "codes": {
    "invalid": "记录内容不符合要求。",
    "not-an-object": "记录格式有误，服务器无法读取：请放弃这条记录后重新记录。",
    "household-not-found": "找不到这户，或这户不在您负责的网格内（可能已删除或已划入其他网格）。",
    "location-invalid": "定位坐标无效（超出经纬度范围或经纬度颠倒）：请放弃这条记录，重新定位后再记录。",
    "outside-every-grid": "商户的位置不在任何网格内。",
    "not-your-grid": "商户所在的网格 {grid_code} 不是您的网格，走访当天您也不是该网格排班的替岗人员。",
    "id-taken": "这条记录的编号已被另一条走访使用：请放弃它，重新记录一次。",
    "repeats-rejected-item": "与同一批中另一条被拒绝的记录重复。",
    "not-stored": "服务器这次没能保存这条记录：请点“修改”后直接保存，重新发送。",
    "database-rule": "这条记录不符合数据规则，服务器无法保存：请修改或放弃。"
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
    "follow_up_note": "跟进事项"
  },
  "messages": {
    "The time must fall in the weeks served, 2000-W01 to 2999-W52 (ISO weeks, Asia/Shanghai).": "走访时间不在系统受理的范围内（2000 年至 2999 年），手机日期可能有误：请校正手机时间，放弃这条记录后重新记录。",
    "The UTC offset must be a whole number of minutes.": "走访时间的时区不是整分钟，手机的时间设置可能有误：请校正后放弃这条记录并重新记录。",
    "Must not contain NUL characters.": "{field}含有不能保存的空字符。",
    "Must not contain control characters or bidirectional overrides.": "{field}含有不能保存的控制字符。",
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
