// The workers' mobile web app: today's post, tasks, the week's plan, visits recorded offline, leave.
import {
  CARE_TAGS, DEVICE_KEY, GRID_TASKS_KEY, HOUSEHOLDS_KEY, HOUSEHOLDS_USER_KEY, OCCUPANCIES, INBOX_ACKS_KEY, INBOX_KEY, PLAN_KEY, TASKS_KEY, TASK_TEXT, api, apiOnce, apiPage, apiPages, beijingTime, config, escapeHtml, focusLost, getToken, noAnswer, isoWeek, keepCopy, keptCopy,
  letGoOfPush, otherLangHref, pickLang, forgetInbox, forgetSignIn, signIn, signInFailure, signOut, todayLocal, translate, urgencyOption,
} from "./common.js";
import {
  RETRIED_REFUSALS, clearQueue, discard, dismissFlagged, enqueue, getMeta, handOver, listFlagged, listQueued, requeueEdited,
  setMeta, syncQueue, tokenUser,
} from "./queue.js";
import { askForOwnPassword, mustChangePassword } from "./password.js";
import { evidenceWords, gradeWord, problemZh, refusalZh } from "./reasons.js";
import { recurringSection } from "./recurring.js";
import { SessionEnded, StorageUnavailable, TOKEN_KEY, keepFresh, storeTokens, tokenClaims } from "./session.js";
import { listReports, reportProblem } from "./report_problem.js";
import { taskDetail } from "./task_detail.js";
import { keepMyPages, keptPage } from "./task_pages.js";
import { dropStep, keepStep, listSteps, mySteps, sendSteps, waitingOther } from "./task_steps.js";

const TEXT = {
  zh: {
    title: "网格员", roleTitles: { grid_leader: "网格长", community_admin: "社区管理员", district_viewer: "区级查看" }, username: "用户名", password: "密码", signIn: "登录", signOut: "退出", other: "English",
    today: "今日岗位", record: "记录走访", household: "住户", outcome: "结果", notes: "备注",
    registerChanged: "住户信息有变化？", occupancy: "居住情况", occupancyUnknown: "未登记", members: "常住人数", careTags: "关怀标签", tagsAdded: "加上标签", tagsRemoved: "去掉标签",
    asRead: (facts) => `登记信息（应用上次读取）：${facts}`, membersCount: (n) => `${n}人`, noTags: "无关怀标签",
    registerNotRead: "这户的登记信息尚未读取到本机：联网后打开应用再更正。", membersInvalid: "常住人数应为 0 到 100 的整数。", vacantMembers: "空置的住户常住人数为 0：有人居住请改选居住情况。",
    registerGoes: "住户信息的更正随这条走访同步。", correctionWaiting: "走访已同步，住户信息更正待发送（联网后自动发送）",
    correctionRefused: "住户信息更正未被接受", correctionRefusedCount: (n) => `${n} 户的住户信息更正未被接受：见下方。`,
    dismiss403: "这户已不在您负责的网格内，不能更正其登记信息：请告知网格长或社区。",
    dismiss404: "找不到这户（可能已删除或已划入其他网格）：请告知网格长或社区。",
    dismiss409: "这户已退出登记，不能更正：请告知网格长或社区。",
    changedSinceRead: (now) => `登记信息在本机读取后已被修改（现为 ${now}），这次更正没有保存：请联网后重新打开这户核对，仍不对再更正。`,
    dismiss422: "更正的内容登记册不接受：请告知网格长或社区，由社区在登记册中更正。",
    discardCorrection: "知道了", discardCorrectionConfirm: (label) => `不再发送这户（${label}）的住户信息更正？`,
    followUp: "需要跟进", followUpNote: "跟进事项", followUpKind: "列入",
    followUpTitle: "事项标题（一句话，选填）", followUpTitleHint: "如：3号楼楼道灯不亮（不写姓名、病情）",
    followUpUrgency: "紧急程度", titleOneLine: (what) => `${what}只能写一行，不能含控制字符。`, kindNeed: "需求清单（居民的愿望：装灯、坡道、服务）",
    kindProblem: "问题清单（坏了、不对，需要修或改）", listKinds: { need: "需求", problem: "问题" }, recordButton: "定位并记录", queued: "待同步",
    syncNow: "立即同步", tasks: "我的任务", plan: "本周走访计划", notifications: "消息推送",
    syncOffline: (n) => (n ? `离线：${n} 条走访记录保存在本机，联网后自动同步。` : "离线：联网后才能同步。"),
    enablePush: "开启推送", online: "在线", offline: "离线", postA: "A岗 · 社区服务大厅窗口", windowDesk: "窗口受理", rosterPage: "排班（全社区）",
    postB: "B岗 · 入户走访", noShift: "今日无排班", rosterUnavailable: "排班暂不可用",
    myWeek: "本周排班", weekNone: "本周暂无已发布的排班", weekdays: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
    onLeaveToday: (end) => `今天请假（已批准，至 ${end}）`, rosteredAway: "原排班（由网格长或社区改派）：",
    noTasks: "暂无任务", tasksUnavailable: "任务列表暂不可用", tasksOfflineNone: "离线：任务列表暂不可用（本机没有保存的副本）",
    gridTasks: "网格任务（督办、改派、回访）", gridTasksNone: "网格内暂无他人的未办结或待回访任务",
    gridTasksOffline: "离线：网格任务需要联网。",
    gridTasksSaved: (at, offline) => (offline ? `离线：显示 ${at} 保存的网格任务，改派需要联网。` : `网格任务暂不可用：显示 ${at} 保存的副本。`), gridTasksMore: (n) => `另有 ${n} 项，显示更多`,
    allGrids: (n) => `全部网格（${n}）`, oneGrid: (code, n) => `${code}（${n}）`, gridOf: "网格",
    gridTasksSummary: ({ open, escalated, overdue, awaiting }) => `未办结 ${open} 项${escalated ? `（已升级 ${escalated}）` : ""}${overdue ? `，超期 ${overdue}` : ""}；待回访 ${awaiting} 项。`,
    assignee: "承办人", unassigned: "未派", reassign: "改派", chooseAssignee: "改派给…", awayUntil: (end) => `（休假至 ${end}）`,
    reassigned: (title, name) => `已将“${title}”改派给${name}。`,
    chooseFirst: "请先选择改派给谁。",
    reassignRefused: {
      leave: (name, end) => `${name}正在休假（至 ${end}），没有改派：请改派给在岗的人员。`,
      network: "连接中断，不能确定是否已改派：请看列表中的承办人，没有改派的再点一次即可，不会重复办理。",
      403: "您不能改派这项任务：只有它所在网格的网格长或社区管理员可以改派。",
      409: "这项任务刚有变化（已办结、已改派或承办人已接手），没有改派：请看更新后的列表。",
      422: (name) => `${name}已停用或不在本社区，没有改派：请选择其他人员。`,
      other: "没有改派，请稍后再试。",
    },
    tasksSaved: (at, offline) => (offline ? `离线：显示 ${at} 保存的任务列表；所做的步骤保存在本机，联网后发送`
      : `任务列表暂不可用：显示 ${at} 保存的副本`),
    returnReason: "退回原因（必填）：", returnReasonRequired: "退回必须填写原因，未退回。", noPlan: "本周计划暂不可用", due: "期限", door: "住户", overdueMark: "已超期",
    ticketDeadline: "12345 时限",
    locating: "正在定位…", savedOffline: "已保存，联网后自动同步",
    savedCoarse: (m) => `已保存，联网后自动同步。室内卫星信号弱，用的是网络定位或几分钟内的定位（误差约 ${m} 米）。`,
    geoWhy: { 1: "未允许本应用使用位置信息：请在浏览器的网站设置中允许定位后重试。", 2: "手机暂时无法获取位置：请到窗边、楼道口或楼外再试。", 3: "定位超时：请到窗边、楼道口或楼外再试。" }, synced: "已同步", badLogin: "用户名或密码错误", signinFailed: "登录失败：",
    sessionEnded: "登录已过期，请重新登录。未同步的走访记录仍保存在本机。",
    // Why the sign-in ended, as the server says it (`session_ended`): an admin's reset or
    // switch-off is no expiry, and a worker told so tried the password they knew.
    sessionEndedBy: {
      "password-reset": "管理员重置了您的密码，本机已退出登录。请用管理员告诉您的新密码登录。未同步的走访记录仍保存在本机，登录后自动同步。",
      "switched-off": "您的账号已被管理员停用，本机已退出登录，不能再用这个账号登录。",
      "password-changed": "您的密码已在另一台设备上修改，本机已退出登录。请用新密码登录。未同步的走访记录仍保存在本机，登录后自动同步。",
      "signed-out-everywhere": "您已在另一台设备上选择“退出所有设备”，本机也已退出登录，请重新登录。未同步的走访记录仍保存在本机，登录后自动同步。",
      "role-changed": "管理员更改了您的账号角色，本机已退出登录，请重新登录。未同步的走访记录仍保存在本机，登录后自动同步。",
    },
    switchedOffQueued: (n) => `本机还有 ${n} 条您未同步的走访记录：请不要清除应用数据，把手机交给社区管理员或网格长，由其在本机登录后代为提交。`,
    noStorage: "这个浏览器不允许应用在本机保存数据（可能是无痕/隐私模式，或关闭了网站存储）：离线记录的走访无法保存。请用普通模式打开，或允许网站存储后再登录。",
    geoFailed: "无法定位：", notSaved: "未能保存到本机，这条走访记录没有保存（手机存储空间可能已满，请清理后重试）：", rejected: "被拒绝", pushOn: "推送已开启", pushUnavailable: "推送未配置或浏览器不支持",
    mustVisit: "必访", planOverdue: "逾期",
    planSummary: (n, groups, must, overdue) => `还需走访 ${n} 户，共 ${groups} 栋${must ? ` · 必访 ${must} 户` : ""}${overdue ? ` · 逾期 ${overdue} 户` : ""}`,
    planBuilding: (b) => (b ? (/^\d+$/.test(b) ? `${b}号楼` : b) : "楼栋未注明"), planCount: (n) => `${n} 户`,
    planUnit: (u) => (u ? (/^\d+$/.test(u) ? `${u}单元` : u) : "单元未注明"),
    planDone: (n) => `本机已记录 ${n} 户`, planAllDone: "本周计划内的住户都已走访。",
    planSaved: (at, offline) => (offline ? `离线：显示 ${at} 保存的本周计划，联网后更新` : `本周计划暂不可用：显示 ${at} 保存的副本`),
    handoverNote: (n, user) => `本机有 ${n} 条由账号 #${user} 记录、尚未发送的走访。如该工作人员已离岗、账号已停用，社区管理员或其网格长可代为发送，记在其名下。`,
    handoverSend: "代为发送", handoverActive: "该账号仍在使用：请由本人登录后发送。",
    handoverDone: (stored, refused) => `已保存 ${stored} 条${refused ? `，${refused} 条被拒绝` : ""}。`,
    handoverLeft: "被拒绝的记录仍留在本机（如不在您带领的网格），可由社区管理员登录后代为发送。",
    handoverFailed: "发送失败，请稍后再试。",
    handoverCorrections: (done, refused, held) => [done && `${done} 条住户信息更正已发送`, refused && `${refused} 条更正未被接受（见下方）`,
      held && "住户信息更正未能发送，请稍后再点“代为发送”"].filter(Boolean).join("；") + "。",
    // Signing out with what is not yet on the server: the parts that apply, then the question.
    unsynced: (n, refused, lost) => `${n} 条走访记录未同步${refused ? `（其中 ${refused} 条被服务器拒绝，待修改）` : ""}${lost ? `（其中 ${lost} 条是服务器未能保存的修改）` : ""}`,
    unsentReports: (n) => `${n} 条上报的问题未发送（待发送或待修改）`,
    unsentSteps: (n) => `${n} 项任务办理未发送（待发送或被拒绝）`,
    replaceStep: (old, now) => `本机已有这项任务待发送的“${old}”（含其说明）。用这次的“${now}”替换它吗？`,
    stepWaiting: (a) => `待发送：${a}`, stepRefused: (a, why) => `未发送：${a}（${why}）`,
    signOutAnyway: (parts) => `本机还有 ${parts.join("、")}，退出后将被删除。仍要退出吗？`,
    overtakenCount: (n) => `${n} 条走访记录的修改没有保存：服务器已保存修改前的版本，详见下方。`,
    overtaken: "这条走访记录在自动重新发送时，服务器已保存了修改前的版本，您的修改没有保存。走访记录保存后无法再修改：如修改的内容重要，请记下并告知网格长。",
    yourEdit: "您的修改", storedVersion: "已保存的版本", discardEdit: "放弃修改",
    discardEditConfirm: (label) => `放弃对这条走访记录（${label}）的修改？服务器保存的版本不受影响。`,
    needFollowUpNote: "勾选“需要跟进”时必须填写跟进事项。", tooLong: (what, max) => `${what}最多 ${max} 字。`,
    noNul: (what) => `${what}含有不能保存的空字符。`,
    refusedBy: "服务器拒绝", syncFailed: "同步失败：", refusedCount: (n) => `${n} 条走访记录被服务器拒绝：请在下方修改或放弃。`, edit: "修改", discard: "放弃", cancelEdit: "取消修改", saveEdit: "保存修改",
    editing: (label) => `正在修改被拒绝的走访记录（${label}），位置和时间保持原样。`,
    discardConfirm: (label) => `放弃这条走访记录（${label}）？放弃后无法恢复。`, edited: "已修改，等待同步",
    flaggedCount: (n, grades) => `其中 ${n} 条走访记录的定位${grades.join("或")}，算不上可靠的走访证据：原因见下方，下次请注意。`,
    storedWeak: (grade) => `已保存，但定位${grade}：`, dismiss: "知道了", weakReasons: "服务器判定",
    actions: { accept: "接单", start: "开始处理", resolve: "办结", return: "退回", escalate: "上报", callback: "记录回访", close: "关闭任务", reopen: "重启" },
    outcomes: { met: "见到住户", nobody_home: "无人在家", refused: "拒绝", moved_out: "已搬离", vacant: "空置" },
    leave: "请假", leaveMine: "我的请假", leaveToDecide: "待我审批的请假", leaveStart: "第一天", leaveEnd: "最后一天",
    leaveReason: "事由", leaveRequest: "提交请假申请", leaveNone: "暂无请假记录", leavePendingNone: "暂无待审批的请假",
    leaveOffline: "离线：请假需要联网。联网后才能查看、申请和审批请假（请假申请不会保存在本机待发）。",
    leaveUnavailable: "请假记录暂不可用，请稍后再试。",
    inbox: "消息", inboxMore: "更多", inboxAckAll: "全部标为已读", inboxNone: "暂无消息",
    inboxOffline: "离线：消息需要联网，下面是上次收到的消息。", inboxOfflineNone: "离线：消息需要联网。",
    inboxNeedsNet: "离线：标为已读需要联网，联网后再试。", inboxFailed: "消息暂不可用，请稍后再试。",
    inboxReadOffline: "离线：已在本机标为已读，联网后告知服务器。",
    inboxFailedKept: "消息暂不可用，下面是上次收到的消息。",
    inboxGone: "这条消息已不在服务器上。", inboxAckFailed: "没有标为已读，请稍后再试。",
    inboxAckedAll: (n) => (n ? `已将 ${n} 条消息标为已读。` : "没有未读消息。"),
    inboxTaskNotKept: "离线：本机保存的任务列表里没有这项任务，联网后再看。",
    inboxLeaveGone: "这条请假已不在列表中（可能已取消）。", inboxRegisterOnline: "住户登记册需要联网：联网后再点这条消息。", inboxDeviceGone: "这台设备已不在列表中（可能已移除）。",
    // A short label per notice kind (api/models/notifications.py NOTIFICATION_KINDS): the title
    // says the rest; a kind not listed shows its title alone.
    noticeKinds: {
      task_dispatched: "新任务", task_reassigned: "改派", task_deadline_warning: "即将超期", task_escalated: "升级",
      task_contact_warning: "待联系", task_contact_overdue: "联系超时",
      task_unassigned: "待分派", task_resolved: "待回访", task_transferred: "转办", task_updated: "任务",
      roster_published: "排班", roster_changed: "排班", roster_short: "缺岗", shift_swap_requested: "换班", shift_swap_cancelled: "换班",
      shift_swap_rejected: "换班", shift_swap_expired: "换班", leave_requested: "请假", leave_decided: "请假",
      leave_cancelled: "请假", leave_shortened: "请假", report_ready: "周报", device_retired: "设备", device_moved: "设备", household_moved_out: "搬离",
    },
    unreadMark: "未读",
    account: "账号安全", changePassword: "修改密码", signOutAll: "退出所有设备",
    myDevices: "接收通知的设备", thisOne: "本机", remove: "移除",
    kinds: { android: "安卓手机", ios: "苹果手机", web: "浏览器" },
    deviceName: (kind, label) => (label ? `${kind}「${label}」` : kind),
    deviceActive: (at) => (at ? `正在接收推送 · 上次收到 ${at}` : "正在接收推送 · 尚未收到过推送"),
    deviceRetired: (since, n) => `已停止推送：${since ? `自 ${since} 起` : ""}连续 ${n} 次发送失败，收不到任务通知。请在这台设备上打开网格员应用并重新登录（浏览器请点“开启推送”）即可恢复；不再使用请移除。`,
    deviceSignedOut: "收不到推送：这台设备的登录已过期或已退出。请在这台设备上重新登录即可恢复；不再使用请移除。",
    deviceUnregistered: (at) => `已停止推送：${at ? `${at} ` : ""}推送服务答复这台设备的推送登记已失效（应用重装、清除了数据，或浏览器取消了订阅），收不到任务通知。请在这台设备上打开网格员应用（浏览器请点“重新开启推送”）即可恢复；不再使用请移除。`,
    deviceRegistered: (at) => `登记于 ${at}`,
    devicesNone: "还没有设备登记接收推送：任务通知只能打开应用查看。",
    devicesRetiredCount: (n) => `有 ${n} 台设备已停止接收推送，见下面的说明。`,
    devicesOffline: "离线：设备列表需要联网。", devicesFailed: "设备列表暂不可用，请稍后再试。",
    removeConfirm: (name) => `移除${name}？移除后不再向它推送任务通知（在那台设备上重新登录或开启推送可再次接收）。`,
    removeThisConfirm: "移除本机？本机将不再收到任务推送（点“开启推送”可再次接收）。",
    removed: (name) => `已移除${name}。`, removeFailed: "没有移除成功，请稍后再试。", removeGone: "这台设备已不在列表中（可能已在别处移除）。",
    hereUnsupported: "本机：这个浏览器不支持推送通知，或服务器未配置推送。任务通知只能打开应用查看。",
    hereDenied: "本机：浏览器已禁止本网站的通知，收不到任务推送。请在浏览器的网站设置中允许通知，再点“开启推送”。",
    hereNotRegistered: "本机：尚未开启推送，收不到任务通知。", hereActive: "本机：正在接收推送。",
    hereRetired: "本机：已停止推送（多次发送失败）。点下方按钮重新开启。",
    hereUnregistered: "本机：推送登记已失效，已停止推送。点下方按钮重新开启。",
    hereSignedOut: "本机：这次登录已不能接收推送。点下方按钮重新开启。",
    registerHere: "开启推送", registerAgain: "重新开启推送",
    quietHours: "免打扰时段", quietStart: "开始", quietEnd: "结束", quietSave: "保存", quietClear: "不设免打扰",
    quietNote: "免打扰时段内的普通通知等到时段结束再推送；紧急任务（升级、危及生命安全）照常推送。时间为北京时间。",
    quietSaved: (start, end) => `已保存：每天 ${start} 至 ${end} 普通通知暂缓推送。`, quietNone: "未设免打扰时段。",
    quietCleared: "已取消免打扰时段。", quietBoth: "请同时填写开始和结束时间（或点“不设免打扰”）。",
    quietSame: "开始和结束不能是同一时间。", quietFailed: "没有保存成功，请稍后再试。",
    signOutAllConfirm: "将退出您在所有设备（包括本机）上的登录，并停止向这些设备推送消息。本机未同步的走访记录会保留，重新登录后同步。继续吗？",
    signedOutEverywhere: (n) => `已退出所有设备（${n} 处登录），请重新登录。`,
    passwordChanged: "密码已修改，您在其他设备上的登录已退出。", accountOffline: "离线：需要联网。", accountFailed: "操作失败：",
    leaveDays: (start, end, n) => (start === end ? `${start}（1 天）` : `${start} 至 ${end}（${n} 天）`),
    leaveStatuses: { requested: "待审批", approved: "已批准", rejected: "未批准", cancelled: "已取消" },
    leaveAsked: (at) => `申请于 ${at}`, leaveDecidedAt: (at) => `审批于 ${at}`, leaveCancelledAt: (at) => `取消于 ${at}`,
    leaveShortened: (end) => `已提前结束（原批准至 ${end}）`, leaveOlder: (n) => `另有 ${n} 条较早的记录未显示。`,
    leaveWithdraw: "撤回申请", leaveCancel: "取消请假", leaveApprove: "批准", leaveReject: "不批准",
    leaveBack: "已返岗，提前销假", leaveBackConfirm: (days) => `提前结束 ${days} 的请假？今天起照常到岗，昨天及以前的假期保留。`,
    leaveBackDone: "已提前销假：今天起照常到岗。",
    leaveWithdrawConfirm: (days) => `撤回 ${days} 的请假申请？`,
    leaveCancelConfirm: (days) => `取消 ${days} 的请假？取消后这些天须照常到岗。`,
    leaveRejectConfirm: (name, days) => `不批准${name} ${days} 的请假？可写明理由（选填），申请人会看到。`,
    leaveNote: "审批意见",
    leaveCurrent: "休假中和即将开始的请假", leaveCurrentNone: "暂无休假中或即将开始的请假",
    leaveUnderWay: "休假中", leaveToCome: "未开始", leaveEndEarly: "提前结束",
    leaveEndConfirm: (name, days) => `提前结束${name} ${days} 的请假？今天起照常到岗，昨天及以前的假期保留。`,
    leaveCancelOtherConfirm: (name, days) => `取消${name} ${days} 的请假？取消后这些天须照常到岗。`,
    leaveEnded: (name) => `已提前结束${name}的请假：今天起照常到岗。`, leaveCancelledOther: (name) => `已取消${name}的请假。`,
    leaveSent: "请假申请已提交，等待网格长或社区管理员审批。", leaveWithdrawn: "请假申请已撤回。", leaveCancelled: "请假已取消。",
    leaveApproved: (name, shifts, tasks) => `已批准${name}的请假。${shifts || tasks ? `假期内还有${[shifts && `${shifts} 个班次`, tasks && `${tasks} 项未办结的任务`].filter(Boolean).join("、")}需要改派（在排班和任务中处理）。` : ""}`,
    leaveRejected: (name) => `已不批准${name}的请假。`,
    // No answer: the request may have arrived (the answer lost) or not. Pressed again, it goes
    // with the same Idempotency-Key (apiOnce): done once either way.
    leaveNetwork: "连接中断，不能确定服务器是否收到（请假不保存在本机待发）：请看下面的列表，没有办成的再点一次即可，不会重复办理。",
    leaveFailed: "没有成功，请稍后再试。", leaveCheck: (fields) => `请检查${fields.join("、")}。`,
    leaveFields: { start_date: "第一天", end_date: "最后一天", reason: "事由" },
    // A refusal (its HTTP status) of each leave call, as api/services/rosters.py words it in English.
    leaveRefused: {
      request: {
        403: "这个账号不能请假：只有网格员和网格长可以申请。",
        409: "这段时间与您已有的请假（待审批或已批准）重叠，没有提交：可先撤回原来的申请，或换个日期。",
        422: "请假申请不符合要求，没有提交。",
      },
      decide: {
        403: "您不能审批这条请假：自己的请假由其他网格长或社区管理员审批。",
        404: "找不到这条请假申请，或它不在您的社区。",
        409: "这条请假申请已经处理过了（已有人审批，或申请人已撤回）。",
      },
      end: {
        403: "您不能提前结束这条请假。",
        404: "找不到这条请假。",
        409: "这条请假已不能提前结束：未获批准、已取消或已经休完。",
        422: "这条请假不能从今天起结束（可能今天才开始：请改用“取消请假”）。",
      },
      cancel: {
        403: "您不能取消这条请假。",
        404: "找不到这条请假。",
        409: "这条请假已不能取消：已未获批准或已取消，或已批准且已经开始（已休的天数要留作记录）。",
      },
    },
    statuses: TASK_TEXT.zh.statuses,
  },
  en: {
    title: "Grid worker", roleTitles: { grid_leader: "Grid leader", community_admin: "Community admin", district_viewer: "District viewer" }, username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out",
    other: "中文", today: "Today's post", record: "Record a visit", household: "Household", outcome: "Outcome",
    registerChanged: "Household facts changed?", occupancy: "Occupancy", occupancyUnknown: "Not recorded", members: "Members", careTags: "Care tags", tagsAdded: "Tags added", tagsRemoved: "Tags taken off",
    asRead: (facts) => `In the register (as the app last read it): ${facts}`, membersCount: (n) => `${n} member${n === 1 ? "" : "s"}`, noTags: "no care tags",
    registerNotRead: "This household's register facts are not on this phone yet: open the app online to correct them.", membersInvalid: "Members: a whole number from 0 to 100.", vacantMembers: "A vacant household has no members: pick another occupancy if someone lives there.",
    registerGoes: "The household's correction goes with this visit.", correctionWaiting: "Visit synced; the household's correction waits to be sent (automatically, once online)",
    correctionRefused: "The household's correction was not accepted", correctionRefusedCount: (n) => `${n} household correction${n === 1 ? " was" : "s were"} not accepted: see below.`,
    dismiss403: "", dismiss404: "", dismiss409: "", dismiss422: "",
    changedSinceRead: (now) => `The register changed since this phone read it (now ${now}); this correction was not saved: open the household again online and correct what is still wrong.`,
    discardCorrection: "OK", discardCorrectionConfirm: (label) => `Send this household's correction (${label}) no more?`,
    notes: "Notes", followUp: "Needs follow-up", followUpNote: "Follow-up", followUpKind: "On the list of",
    followUpTitle: "Title (one line, optional)", followUpTitleHint: "e.g. the stairwell lamps of building 3 are out (no names, no health)",
    followUpUrgency: "Urgency", titleOneLine: (what) => `${what}: one line, without control characters.`,
    kindNeed: "Needs (a resident's wish: lamps, a ramp, a service)", kindProblem: "Problems (broken or wrong: to fix)",
    listKinds: { need: "need", problem: "problem" }, recordButton: "Locate and record",
    queued: "Waiting to sync", syncNow: "Sync now", tasks: "My tasks", plan: "My plan this week",
    syncOffline: (n) => (n ? `Offline: ${n} visit${n === 1 ? " is" : "s are"} kept on this device and sync${n === 1 ? "s" : ""} once online.`
      : "Offline: syncing needs a connection."),
    notifications: "Notifications", enablePush: "Enable push", online: "online", offline: "offline",
    postA: "A-post · the hall window", windowDesk: "Window desk", rosterPage: "Rosters (the community)", postB: "B-post · door to door", noShift: "No shift today",
    myWeek: "My week", weekNone: "No published shift this week", weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    onLeaveToday: (end) => `On leave today (approved, until ${end})`, rosteredAway: "Rostered before (handed on by the leader or the office): ",
    rosterUnavailable: "Roster unavailable", noTasks: "No tasks", tasksUnavailable: "Tasks unavailable",
    gridTasks: "Tasks of my grids (oversee, reassign, call back)", gridTasksNone: "No task of anyone else in your grids open or awaiting the callback",
    gridTasksOffline: "Offline: the grids' tasks need a connection.",
    gridTasksSaved: (at, offline) => (offline ? `Offline: the grids' tasks saved at ${at}; reassigning needs a connection.` : `The grids' tasks are unavailable: the copy saved at ${at}.`), gridTasksMore: (n) => `${n} more: show them`,
    allGrids: (n) => `All grids (${n})`, oneGrid: (code, n) => `${code} (${n})`, gridOf: "Grid",
    gridTasksSummary: ({ open, escalated, overdue, awaiting }) => `${open} open${escalated ? ` (${escalated} escalated)` : ""}${overdue ? `, ${overdue} overdue` : ""}; ${awaiting} awaiting the callback.`,
    assignee: "Assignee", unassigned: "unassigned", reassign: "Reassign", chooseAssignee: "Reassign to…", awayUntil: (end) => ` (on leave until ${end})`,
    reassigned: (title, name) => `“${title}” reassigned to ${name}.`,
    chooseFirst: "Choose whom to reassign it to first.",
    reassignRefused: {
      leave: (name, end) => `${name} is on leave until ${end}: not reassigned; choose someone at work.`,
      network: "The connection broke: the server may or may not have it. See the assignee in the list; if it is not reassigned, press again: it is not done twice.",
    },
    tasksOfflineNone: "Offline: tasks unavailable (no copy saved on this device)",
    tasksSaved: (at, offline) => (offline ? `Offline: the task list saved at ${at}; steps taken are kept on this device and sent once online`
      : `Tasks unavailable: the copy saved at ${at}`),
    returnReason: "Why return it (required):", returnReasonRequired: "A return needs a reason: not returned.", noPlan: "Plan unavailable",
    due: "due", door: "household", overdueMark: "overdue", ticketDeadline: "12345 hotline deadline", locating: "Locating…", savedOffline: "Saved; it syncs when online",
    savedCoarse: (m) => `Saved; it syncs when online. Indoors the satellites were out of reach: the network's position, or one of the last few minutes, was used (within about ${m} m).`,
    geoWhy: { 1: "The app may not use the location: allow it in the browser's site settings, then try again.", 2: "The phone has no position now: try again by a window, at the stair door or outside.", 3: "Locating timed out: try again by a window, at the stair door or outside." },
    synced: "Synced", badLogin: "Wrong username or password", signinFailed: "Sign-in failed: ",
    notSaved: "Not saved on this device, the visit is not kept (its storage may be full: free some space and try again): ",
    sessionEnded: "Your sign-in has ended: sign in again. Unsynced visits are kept on this device.",
    sessionEndedBy: {
      "password-reset": "An admin reset your password and this device was signed out. Sign in with the new password the admin gives you. Unsynced visits are kept on this device and sync once you sign in.",
      "switched-off": "An admin switched your account off and this device was signed out: the account can no longer sign in.",
      "password-changed": "Your password was changed on another device and this one was signed out. Sign in with the new password. Unsynced visits are kept on this device and sync once you sign in.",
      "signed-out-everywhere": "You signed out everywhere on another device, this one included: sign in again. Unsynced visits are kept on this device and sync once you sign in.",
      "role-changed": "An admin changed your account's role and this device was signed out: sign in again. Unsynced visits are kept on this device and sync once you sign in.",
    },
    switchedOffQueued: (n) => `This device still holds ${n} unsynced visit${n === 1 ? "" : "s"} of yours: do not clear the app's data; hand the phone to the community admin or your grid leader, who sign in on it and send ${n === 1 ? "it" : "them"} for you.`,
    noStorage: "This browser does not let the app keep data on this device (a private window, or site storage turned off): visits recorded offline could not be kept. Open it in a normal window, or allow site storage, and sign in again.", geoFailed: "No location: ", rejected: "rejected",
    // The Chinese sentences of these refusals say it themselves (web/src/reasons.js).
    resentLater: "Kept on this device and sent again automatically every few hours; edit and save to send it now.",
    pushOn: "Push enabled", pushUnavailable: "Push not configured or not supported", mustVisit: "must-visit",
    planOverdue: "overdue",
    planSummary: (n, groups, must, overdue) => `${n} household${n === 1 ? "" : "s"} still due in ${groups} building${groups === 1 ? "" : "s"}${must ? ` · ${must} must-visit` : ""}${overdue ? ` · ${overdue} overdue` : ""}`,
    planBuilding: (b) => (b ? (/^\d+$/.test(b) ? `Building ${b}` : b) : "Building not given"), planCount: (n) => `${n}`,
    planUnit: (u) => (u ? (/^\d+$/.test(u) ? `Unit ${u}` : u) : "Unit not given"),
    planDone: (n) => `Recorded on this device: ${n}`, planAllDone: "Every household of this week's plan is visited.",
    planSaved: (at, offline) => (offline ? `Offline: this week's plan as read at ${at}; updated once online` : `Plan unavailable: the copy read at ${at}`),
    handoverNote: (n, user) => `${n} visit${n === 1 ? "" : "s"} recorded on this phone by account #${user} ${n === 1 ? "was" : "were"} never sent. If that worker left and their account is switched off, the community admin or their grid leader sends them as theirs.`,
    handoverSend: "Send them for this worker", handoverActive: "That account is still active: its worker sends them, signed in.",
    handoverDone: (stored, refused) => `${stored} stored${refused ? `, ${refused} refused` : ""}.`,
    handoverLeft: "The refused ones stay on this phone (one of a grid you do not lead, say): the community admin, signed in, sends them.",
    handoverFailed: "Sending failed; try again later.",
    handoverCorrections: (done, refused, held) => [done && `${done} register correction${done === 1 ? "" : "s"} sent`,
      refused && `${refused} refused (see below)`, held && "corrections not sent yet: press “Send them for this worker” again later"].filter(Boolean).join("; ") + ".",
    unsynced: (n, refused, lost) => `${n} visit${n === 1 ? "" : "s"} not synced${refused ? ` (${refused} refused by the server, to be corrected)` : ""}${lost ? ` (${lost} an edit the server did not store)` : ""}`,
    unsentReports: (n) => `${n} reported problem${n === 1 ? "" : "s"} not sent (waiting, or refused to be fixed)`,
    unsentSteps: (n) => `${n} step${n === 1 ? "" : "s"} on tasks not sent (waiting, or refused)`,
    replaceStep: (old, now) => `"${old}" (with its note) waits on this device for this task. Replace it with this "${now}"?`,
    stepWaiting: (a) => `Waiting to send: ${a}`, stepRefused: (a, why) => `Not sent: ${a} (${why})`,
    signOutAnyway: (parts) => `This device still holds ${parts.join(" and ")}: signing out deletes ${parts.length > 1 ? "them" : "it"}. Sign out anyway?`,
    overtakenCount: (n) => `${n} edit${n === 1 ? " was" : "s were"} not saved: the server stored the earlier version; see below.`,
    overtaken: "The server stored the earlier version of this visit when it was sent again automatically: your edit was not saved. A stored visit cannot be changed: if the edit matters, note it down and tell your grid leader.",
    yourEdit: "Your edit", storedVersion: "Stored", discardEdit: "Discard the edit",
    discardEditConfirm: (label) => `Discard your edit of this visit (${label})? The version the server stored stays as it is.`,
    needFollowUpNote: "A follow-up needs its description.", tooLong: (what, max) => `${what}: at most ${max} characters.`,
    noNul: (what) => `${what} holds a NUL character that cannot be saved.`,
    refusedBy: "Refused by the server", syncFailed: "Sync failed: ", refusedCount: (n) => `${n} visit${n === 1 ? " was" : "s were"} refused by the server: edit or discard below.`, edit: "Edit", discard: "Discard", cancelEdit: "Cancel editing",
    saveEdit: "Save changes", editing: (label) => `Editing a refused visit (${label}); its place and time stay as recorded.`,
    discardConfirm: (label) => `Discard this visit (${label})? It cannot be undone.`, edited: "Changed; waiting to sync",
    flaggedCount: (n, grades) => `${n} of them ${n === 1 ? "was" : "were"} stored with ${grades.join(" or ")} location evidence: see why below.`,
    storedWeak: (grade) => `Stored, but its location evidence is ${grade}: `, dismiss: "Got it", weakReasons: "Server's reasons",
    actions: { accept: "Accept", start: "Start", resolve: "Resolve", return: "Return", escalate: "Escalate", callback: "Record the callback", close: "Close the task", reopen: "Reopen" },
    outcomes: { met: "met", nobody_home: "nobody home", refused: "refused", moved_out: "moved out", vacant: "vacant" },
    leave: "Leave", leaveMine: "My leave", leaveToDecide: "Leave to decide", leaveStart: "First day", leaveEnd: "Last day",
    leaveReason: "Reason", leaveRequest: "Request leave", leaveNone: "No leave", leavePendingNone: "No leave request waits for you",
    leaveOffline: "Offline: leave needs a connection. Requests and decisions are made online (a request is not kept on this device to send later).",
    leaveUnavailable: "Leave unavailable; try again later.",
    inbox: "Messages", inboxMore: "More", inboxAckAll: "Mark all read", inboxNone: "No messages",
    inboxOffline: "Offline: messages need a connection; below, the last ones received.", inboxOfflineNone: "Offline: messages need a connection.",
    inboxNeedsNet: "Offline: marking read needs a connection; try again online.", inboxFailed: "Messages unavailable; try again later.",
    inboxReadOffline: "Offline: marked read on this device; the server is told once online.",
    inboxFailedKept: "Messages unavailable; below, the last ones received.",
    inboxGone: "This message is no longer on the server.", inboxAckFailed: "Not marked read; try again later.",
    inboxAckedAll: (n) => (n ? `${n} message${n === 1 ? "" : "s"} marked read.` : "No unread message."),
    inboxTaskNotKept: "Offline: the task list saved on this device does not have that task; look again online.",
    inboxLeaveGone: "That leave is no longer listed (cancelled?).", inboxRegisterOnline: "The resident register needs a connection: tap the notice again once online.", inboxDeviceGone: "That device is no longer listed (removed?).",
    noticeKinds: {
      task_dispatched: "New task", task_reassigned: "Reassigned", task_deadline_warning: "Due soon", task_escalated: "Escalated",
      task_contact_warning: "Contact due", task_contact_overdue: "Contact late",
      task_unassigned: "To assign", task_resolved: "To call back", task_transferred: "Transferred", task_updated: "Task",
      roster_published: "Roster", roster_changed: "Roster", roster_short: "Short-staffed", shift_swap_requested: "Swap", shift_swap_cancelled: "Swap",
      shift_swap_rejected: "Swap", shift_swap_expired: "Swap", leave_requested: "Leave", leave_decided: "Leave",
      leave_cancelled: "Leave", leave_shortened: "Leave", report_ready: "Report", device_retired: "Device", device_moved: "Device", household_moved_out: "Moved out",
    },
    unreadMark: "unread",
    account: "Account", changePassword: "Change password", signOutAll: "Sign out everywhere",
    myDevices: "Devices that get notifications", thisOne: "this device", remove: "Remove",
    kinds: { android: "Android phone", ios: "iPhone", web: "Browser" },
    deviceName: (kind, label) => (label ? `${kind} “${label}”` : kind),
    deviceActive: (at) => (at ? `Gets pushes · last received ${at}` : "Gets pushes · none received yet"),
    deviceRetired: (since, n) => `Pushes stopped: ${n} sends failed in a row${since ? ` since ${since}` : ""}; task notifications do not reach it. Open the app on that device and sign in again (in a browser: "Enable push") to get them again; remove it if no longer used.`,
    deviceSignedOut: "Gets no pushes: its sign-in expired or was ended. Sign in again on that device; remove it if no longer used.",
    deviceUnregistered: (at) => `Pushes stopped: ${at ? `at ${at} ` : ""}its push service answered that its registration is gone (the app reinstalled, its data cleared, or the browser's subscription dropped); task notifications do not reach it. Open the app on that device (in a browser: "Enable push again") to get them again; remove it if no longer used.`,
    deviceRegistered: (at) => `registered ${at}`,
    devicesNone: "No device is registered for pushes: task notifications are seen only in the app.",
    devicesRetiredCount: (n) => `${n} device${n === 1 ? "" : "s"} no longer get${n === 1 ? "s" : ""} pushes: see below.`,
    devicesOffline: "Offline: the device list needs a connection.", devicesFailed: "Device list unavailable; try again later.",
    removeConfirm: (name) => `Remove ${name}? Task notifications stop going to it (signing in again on it brings them back).`,
    removeThisConfirm: "Remove this device? It stops getting task notifications (\"Enable push\" brings them back).",
    removed: (name) => `${name} removed.`, removeFailed: "Not removed; try again later.", removeGone: "That device is no longer listed (removed elsewhere?).",
    hereUnsupported: "This device: this browser does not support push, or push is not configured. Task notifications are seen only in the app.",
    hereDenied: "This device: the browser blocks this site's notifications; task pushes cannot reach it. Allow notifications in the site settings, then \"Enable push\".",
    hereNotRegistered: "This device: push is not enabled; task notifications do not reach it.", hereActive: "This device: gets pushes.",
    hereRetired: "This device: pushes stopped (sends kept failing). Enable them again below.",
    hereUnregistered: "This device: its push registration is gone; pushes stopped. Enable them again below.",
    hereSignedOut: "This device: this sign-in gets no pushes. Enable them again below.",
    registerHere: "Enable push", registerAgain: "Enable push again",
    quietHours: "Quiet hours", quietStart: "From", quietEnd: "Until", quietSave: "Save", quietClear: "No quiet hours",
    quietNote: "During quiet hours ordinary notifications wait until they end; urgent ones (escalations, danger to life) go at once. Beijing time.",
    quietSaved: (start, end) => `Saved: ordinary notifications wait from ${start} to ${end} every day.`, quietNone: "No quiet hours set.",
    quietCleared: "Quiet hours removed.", quietBoth: "Give both times (or \"No quiet hours\").",
    quietSame: "They cannot start and end at the same time.", quietFailed: "Not saved; try again later.",
    signOutAllConfirm: "This ends your sign-ins on every device, this one included, and stops notifications to them. Unsynced visits stay on this device and sync once you sign in again. Go on?",
    signedOutEverywhere: (n) => `Signed out everywhere (${n} sign-ins): sign in again.`,
    passwordChanged: "Password changed; your sign-ins on other devices have ended.", accountOffline: "Offline: this needs a connection.", accountFailed: "Failed: ",
    leaveDays: (start, end, n) => (start === end ? `${start} (1 day)` : `${start} to ${end} (${n} days)`),
    leaveStatuses: { requested: "waiting for a decision", approved: "approved", rejected: "rejected", cancelled: "cancelled" },
    leaveAsked: (at) => `asked ${at}`, leaveDecidedAt: (at) => `decided ${at}`, leaveCancelledAt: (at) => `cancelled ${at}`,
    leaveShortened: (end) => `ended early (approved until ${end})`, leaveOlder: (n) => `${n} older not shown.`,
    leaveWithdraw: "Withdraw", leaveCancel: "Cancel leave", leaveApprove: "Approve", leaveReject: "Reject",
    leaveBack: "Back at work: end it early", leaveBackConfirm: (days) => `End the leave of ${days} early? You work from today; the days before stay leave.`,
    leaveBackDone: "Leave ended early: you work from today.",
    leaveWithdrawConfirm: (days) => `Withdraw the request for ${days}?`,
    leaveCancelConfirm: (days) => `Cancel the leave of ${days}? Those days are worked again.`,
    leaveRejectConfirm: (name, days) => `Reject ${name}'s leave of ${days}? You may say why (optional); they will read it.`,
    leaveNote: "Decision note",
    leaveCurrent: "Leave under way or to come", leaveCurrentNone: "No leave under way or to come",
    leaveUnderWay: "under way", leaveToCome: "to come", leaveEndEarly: "End early",
    leaveEndConfirm: (name, days) => `End ${name}'s leave of ${days} early? They work from today; the days before stay leave.`,
    leaveCancelOtherConfirm: (name, days) => `Cancel ${name}'s leave of ${days}? Those days are worked again.`,
    leaveEnded: (name) => `${name}'s leave ended early: they work from today.`, leaveCancelledOther: (name) => `${name}'s leave cancelled.`,
    leaveSent: "Leave requested; a grid leader or the community admin decides it.", leaveWithdrawn: "Request withdrawn.",
    leaveCancelled: "Leave cancelled.",
    leaveApproved: (name, shifts, tasks) => `${name}'s leave approved.${shifts || tasks ? ` To hand on: ${[shifts && `${shifts} shift${shifts === 1 ? "" : "s"}`, tasks && `${tasks} open task${tasks === 1 ? "" : "s"}`].filter(Boolean).join(", ")} (in the roster and the tasks).` : ""}`,
    leaveRejected: (name) => `${name}'s leave rejected.`,
    leaveNetwork: "The connection broke: the server may or may not have it (leave is not kept on this device to send later). See the list below; if it is not done, press again: it is not done twice.",
    leaveFailed: "Not done; try again later.", leaveCheck: (fields) => ` Check: ${fields.join(", ")}.`,
    leaveFields: { start_date: "first day", end_date: "last day", reason: "reason" },
    leaveRefused: {},
    statuses: TASK_TEXT.en.statuses,
  },
};
// The transitions a worker makes from each state (issue #5); leaders do the rest. Each must be an
// assignee's transition of api/services/tasks.py TRANSITIONS (tests/api/test_web.py checks).
const WORKER_ACTIONS = {
  dispatched: ["accept", "return"], accepted: ["start"], in_progress: ["resolve"], reopened: ["accept"],
  escalated: ["resolve"],
};
const lang = pickLang();
const t = TEXT[lang];
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
translate(document, t);
const $ = (id) => document.getElementById(id);
$("lang").textContent = t.other;
$("lang").href = otherLangHref(lang);

const items = (data) => (Array.isArray(data) ? data : data?.items || data?.households || data?.stops || data?.results || []);

function showNet() {
  $("net").textContent = navigator.onLine ? t.online : t.offline;
  $("net").classList.toggle("offline", !navigator.onLine);
}

/** My leave, all of it (`GET /leaves?worker=me`), or null for a role that takes none: one read
 * feeds both today's post (on leave today?) and the leave card's list. They each read it at
 * start, two requests where one answers both. */
function readMyLeave() {
  if (!LEAVE_REQUESTERS.includes(tokenClaims(getToken()).role)) return Promise.resolve(null);
  return api("/api/v1/leaves?worker=me");
}

/** Approved leave of mine covering today, or null (none, or not readable now). */
async function leaveToday(mine) {
  const today = todayLocal();
  try {
    return (await mine)?.find((l) => l.status === "approved" && l.start_date <= today && today <= l.end_date) || null;
  } catch {
    return null;
  }
}

// An A-post in a hall with staggered hours says its own slot ("A岗 · 社区服务大厅窗口 11:30–20:00").
const postLabel = (s) => (s.post === "A"
  ? `${t.postA}${s.slot ? ` ${s.slot.start}–${s.slot.end}` : ""}`
  : `${t.postB} ${s.grid_code || ""}`);

/**
 * Today's post and my week, from one read of my shifts this week (published rosters: a worker
 * sees no draft). On approved leave today, that first: the roster keeps the shift until the
 * leader hands it on, and the app said "A-post today" to a worker at home.
 */
async function loadShifts(mine = readMyLeave()) {
  const today = todayLocal();
  let shifts;
  let away;
  try {
    [shifts, away] = await Promise.all([apiPages(`/api/v1/shifts?week=${isoWeek()}&worker=me`), leaveToday(mine)]);
  } catch {
    $("post").innerHTML = `<span class="muted">${t.rosterUnavailable}</span>`;
    $("week-shifts").innerHTML = `<li class="muted">${t.rosterUnavailable}</li>`;
    return;
  }
  shifts.sort((a, b) => a.date.localeCompare(b.date) || a.post.localeCompare(b.post));
  const posts = shifts.filter((s) => s.date === today)
    .map((s) => `<div class="shift post-${s.post}">${escapeHtml(postLabel(s))}</div>`).join("");
  if (away) {
    $("post").innerHTML = `<div class="shift on-leave">${escapeHtml(t.onLeaveToday(away.end_date))}</div>`
      + (posts ? `<div class="muted">${escapeHtml(t.rosteredAway)}</div>${posts}` : "");
  } else {
    $("post").innerHTML = posts || `<span class="muted">${t.noShift}</span>`;
    // At the window today: its page, where walk-in requests become tasks (/window).
    if (shifts.some((s) => s.date === today && s.post === "A")) {
      $("post").insertAdjacentHTML("beforeend", `<a id="window-link" class="window-link" href="/window">${escapeHtml(t.windowDesk)}</a>`);
    }
  }
  $("week-shifts").innerHTML = shifts.map((s) => {
    const weekday = t.weekdays[(new Date(`${s.date}T00:00:00Z`).getUTCDay() + 6) % 7];
    return `<li class="week-shift${s.date === today ? " today" : ""}" data-date="${escapeHtml(s.date)}">${escapeHtml(`${weekday} ${s.date.slice(5)}`)} · ${escapeHtml(postLabel(s))}</li>`;
  }).join("") || `<li class="muted">${t.weekNone}</li>`;
  if (["grid_leader", "community_admin"].includes(tokenClaims(getToken()).role) && !$("rosters-link")) $("week-shifts").insertAdjacentHTML("afterend", `<a id="rosters-link" class="window-link" href="/rosters">${escapeHtml(t.rosterPage)}</a>`);
}

// The statuses of a task still open (api/services/tasks.py OPEN_STATUSES; tests/api/test_web.py
// checks): "my tasks" lists these only, every page of them, soonest deadline first. Without the
// filter a worker's closed tasks filled the first page and hid the open ones.
const OPEN_TASK_STATUSES = ["new", "dispatched", "accepted", "in_progress", "returned", "escalated", "reopened"];
const localTime = (date) => beijingTime(date, lang, "full");

/**
 * A task in "my tasks": its title, state and deadline, and the door it is at (from the
 * households kept on the phone, `doors`: id -> label). A visit's follow-ups are all titled
 * 入户走访跟进 (their words are sealed, shown on the task's page only): without the door, a
 * worker's eight follow-ups were eight identical cards.
 */
function taskItem(task, offline, doors) {
  const actions = offline ? "" : (WORKER_ACTIONS[task.status] || [])
    .map((a) => `<button data-task="${task.id}" data-version="${escapeHtml(task.updated_at || "")}" data-action="${a}">${t.actions[a]}</button>`).join("");
  const due = beijingTime(task.due_at, lang);
  const door = doors.get(task.household_id);
  const late = task.overdue || (task.due_at && new Date(task.due_at) < new Date());
  // A 12345 ticket's deadline is the hotline's (its 办理时限, which the city measures and only the
  // hotline moves: PUT /tasks/{id}/deadline), not one its urgency set: said beside it.
  const ticket = task.ticket_due_at ? ` <span class="ticket-deadline">${escapeHtml(t.ticketDeadline)}</span>` : "";
  // A visit's follow-up says which list it is on (需求 / 问题): the worker's cards tell them apart.
  const list = task.list ? ` <span class="list-kind ${escapeHtml(task.list)}">${escapeHtml(t.listKinds[task.list] || task.list)}</span>` : "";
  return `<li class="task" data-id="${task.id}"><button type="button" class="open-task" data-open="${task.id}"><b>${escapeHtml(task.title)}</b></button>${list}
    <span class="state">${escapeHtml(t.statuses[task.status] || task.status)}</span>${door ? `
    <div class="door">${escapeHtml(t.door)}${colon}${escapeHtml(door)}</div>` : ""}
    <div class="${late ? "overdue" : "muted"}">${t.due} ${escapeHtml(due)}${ticket}${late ? ` · ${t.overdueMark}` : ""}</div>
    <div class="actions">${actions}</div></li>`;
}

async function loadTasks() {
  const user = tokenUser(getToken());
  const query = OPEN_TASK_STATUSES.map((s) => `status=${s}`).join("&");
  let tasks;
  let note = "";
  try {
    tasks = await apiPages(`/api/v1/tasks?assignee=me&${query}`);
    // Kept for offline use: only what the list shows, and only for this worker.
    const kept = tasks.map(({ id, title, status, due_at, ticket_due_at, overdue, household_id, list }) => ({
      id, title, status, due_at, ticket_due_at, overdue, household_id, list,
    }));
    keepCopy(TASKS_KEY, user, { tasks: kept });
    // Their pages too, for the door without a signal (web/src/task_pages.js), in the background.
    keepMyPages(tasks).catch(() => {});
  } catch {
    const saved = keptCopy(TASKS_KEY, user);
    if (saved) {
      tasks = saved.tasks;
      note = `<li class="muted saved-copy">${escapeHtml(t.tasksSaved(localTime(new Date(saved.at)), !navigator.onLine))}</li>`;
    } else {
      myTasks = null;
      $("tasks").innerHTML = `<li class="muted">${navigator.onLine ? t.tasksUnavailable : t.tasksOfflineNone}</li>`;
      return;
    }
  }
  myTasks = { tasks, note };
  await showTasks();
}

/**
 * `list`'s content replaced by `html`, the focus kept: a control that had it (a task's title,
 * its step, its reassign) is focused again as drawn anew, found by its tag and data-*
 * attributes (its `data-version` aside, which a step changes). Drawn again under the finger
 * (the households come, a step is answered), a list dropped the keyboard's place to the top.
 */
function redraw(list, html) {
  const active = list.contains(document.activeElement) ? document.activeElement : null;
  const same = active && active.tagName.toLowerCase() + Object.entries(active.dataset)
    .filter(([name]) => name !== "version")
    .map(([name, value]) => `[data-${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${CSS.escape(value)}"]`).join("");
  list.innerHTML = html;
  if (same && same.includes("[")) list.querySelector(same)?.focus();
}

// "My tasks" as last read, drawn again once the households (their doors) have come.
let myTasks = null;
async function showTasks() {
  // The steps kept are read first, and marked as the list is drawn: marked after, each redraw
  // showed the cards without them for a moment, as if sent.
  const steps = await keptSteps();
  if (!myTasks) return;
  const { tasks, note } = myTasks;
  const doors = new Map(cachedHouseholds().map((h) => [h.id, h.label]));
  redraw($("tasks"), note + (tasks.length ? tasks.map((task) => taskItem(task, Boolean(note), doors)).join("")
    : `<li class="muted">${t.noTasks}</li>`));
  await markKept(steps);
}

// Storage refused (a private window): nothing is kept, nothing to mark.
const keptSteps = () => mySteps().catch(() => []);

// A step taken on a task and kept on the phone (web/src/task_steps.js) is said on the task's
// card: 待发送, or 未发送 with the server's words (the page, opened, shows its note, to discard
// or take again). `steps`: as just read, else read here.
async function markKept(steps = null) {
  steps ??= await keptSteps();
  for (const item of document.querySelectorAll("#tasks li[data-id], #grid-task-list li[data-id]")) {
    const record = steps.find((r) => String(r.task_id) === item.dataset.id);
    let mark = item.querySelector(".kept-step");
    if (!record) {
      mark?.remove();
      continue;
    }
    if (!mark) {
      mark = document.createElement("div");
      const actions = item.querySelector(".actions");
      if (actions) actions.before(mark);
      else item.append(mark);
    }
    const action = t.actions[record.body.action] || record.body.action;
    mark.className = `kept-step ${record.state}`;
    mark.textContent = record.state === "refused" ? t.stepRefused(action, record.refusal) : t.stepWaiting(action);
  }
}

// --- the grids' tasks, for those who oversee them ------------------------------------------
// A task escalated at its deadline stays with its assignee, and its grid's leader is told: the
// leader (or the community admin) reassigns it (POST /tasks/{id}/assign), which the app did not
// offer, so the escalation's notice led nowhere. Listed: the open tasks of the caller's grids
// (the API's scope) held by others or nobody, escalated and overdue first; "reassign" where
// the task's `your_actions` holds "assign", to an active worker or leader the caller may look up.
const TASK_OVERSEERS = ["grid_leader", "community_admin"];
// A community's open tasks run to dozens (its visits' follow-ups alone): 50 cards at once made a
// leader's page metres long on a phone. Each list shows its first few, then more at a tap, and
// a grid may be chosen (kept on the phone: the leader's own grid, say).
const GRID_TASKS_FIRST = 10;
const GRID_TASKS_MORE = 20;
const GRID_TASKS_GRID = "gridwork.gridTasksGrid";
let gridTasks = [];
let assignees = [];
let gridTasksShown = { open: GRID_TASKS_FIRST, awaiting: GRID_TASKS_FIRST };
// What came of 改派 is said at its task, where it was pressed: under the whole list, a phone
// showed a refusal nowhere in sight (the task unchanged, as if nothing happened). The line
// itself moves into the task's card, and back under the list before the list is drawn anew.
const gridTaskStatus = $("grid-task-status");
function sayGridTask(id, said, error) {
  gridTaskStatus.innerHTML = explained(typeof said === "string" ? { why: said, server: "" } : said);
  gridTaskStatus.classList.toggle("error", error);
  gridTaskStatus.dataset.task = String(id);
  placeGridTaskStatus();
  // The list drawn anew took the button pressed: the keyboard's place is what came of it.
  if (focusLost()) gridTaskStatus.focus();
}

/** What came of a step on a grid task stands in its task's card while it is listed (drawn
 * anew, the list put it back under itself, out of sight on a phone), else under the list. */
function placeGridTaskStatus() {
  const id = gridTaskStatus.dataset.task;
  const item = id && $("grid-task-list").querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (item) item.append(gridTaskStatus);
  else $("grid-task-list").after(gridTaskStatus);
}

// Resolved, the leader's return call (回访) and close are due: listed after the open ones.
const AWAITING_CALLBACK = ["resolved", "callback"];
const awaiting = (task) => AWAITING_CALLBACK.includes(task.status);
const urgentFirst = (a, b) => awaiting(a) - awaiting(b) || (b.status === "escalated") - (a.status === "escalated")
  || Boolean(b.overdue) - Boolean(a.overdue) || String(a.due_at || "~").localeCompare(String(b.due_at || "~")) || a.id - b.id;

/** The workers on approved leave today (of the leave under way or to come, as last read):
 * worker id → the leave's last day. */
function awayToday() {
  const today = todayLocal();
  return new Map(currentLeave.filter((l) => l.start_date <= today && today <= l.end_date).map((l) => [l.worker_id, l.end_date]));
}

function gridTaskItem(task, doors) {
  const holder = assignees.find((u) => u.id === task.assignee_id);
  const due = beijingTime(task.due_at, lang);
  const door = doors.get(task.household_id);
  // Those holding the task's grid first (its own workers), the caller after them, and those on
  // leave today last, marked so (the server refuses them: chosen unmarked, the leader learned
  // it from a refusal).
  const me = Number(tokenUser(getToken()));
  const away = awayToday();
  const rank = (u) => (away.has(u.id) ? 3 : u.id === me ? 2 : (u.grid_codes || []).includes(task.grid_code) ? 0 : 1);
  const candidates = assignees.filter((u) => u.id !== task.assignee_id).sort((a, b) => rank(a) - rank(b) || a.id - b.id);
  const named = (u) => (u.display_name || u.username) + (away.has(u.id) ? t.awayUntil(away.get(u.id)) : "");
  const reassign = (task.your_actions || []).includes("assign") && candidates.length
    ? `<div class="actions"><select data-task="${task.id}" aria-label="${escapeHtml(t.chooseAssignee)}"><option value="">${escapeHtml(t.chooseAssignee)}</option>
      ${candidates.map((u) => `<option value="${u.id}">${escapeHtml(named(u))}</option>`).join("")}</select>
      <button type="button" data-reassign="${task.id}">${escapeHtml(t.reassign)}</button></div>` : "";
  return `<li class="grid-task${task.overdue ? " late" : ""}" data-id="${task.id}"><button type="button" class="open-task" data-open="${task.id}"><b>${escapeHtml(task.title)}</b></button>
    <span class="task-state">${escapeHtml(t.statuses[task.status] || task.status)}</span>
    <div class="muted">${escapeHtml(task.grid_code || "")}${door ? ` · <span class="door">${escapeHtml(door)}</span>` : ""} · ${escapeHtml(t.assignee)}${colon}<span class="assignee">${escapeHtml(holder ? holder.display_name || holder.username : task.assignee_name || (task.assignee_id ? `#${task.assignee_id}` : t.unassigned))}</span>${due ? ` · ${escapeHtml(t.due)} ${escapeHtml(due)}` : ""}</div>${reassign}</li>`;
}

async function loadGridTasks() {
  const oversees = TASK_OVERSEERS.includes(tokenClaims(getToken()).role);
  $("grid-tasks").hidden = !oversees;
  if (!oversees) return;
  if (!navigator.onLine) return showSavedGridTasks(t.gridTasksOffline);
  const user = tokenUser(getToken());
  const me = Number(user);
  const query = [...OPEN_TASK_STATUSES, ...AWAITING_CALLBACK].map((s) => `status=${s}`).join("&");
  try {
    const [tasks, users] = await Promise.all([apiPages(`/api/v1/tasks?${query}`), apiPages("/api/v1/users?active=true")]);
    // The caller's own open tasks are in "my tasks"; their own resolved ones (a leader holds
    // tasks too) are in no other list, and their callback and close are the leader's.
    gridTasks = tasks.filter((task) => task.assignee_id !== me || awaiting(task)).sort(urgentFirst);
    assignees = users.filter((u) => ["worker", "grid_leader"].includes(u.role));
    gridTasksSavedAt = null;
    const kept = gridTasks.map((task) => Object.fromEntries(GRID_TASK_KEPT.map((k) => [k, task[k]])));
    keepCopy(GRID_TASKS_KEY, user, { tasks: kept });
  } catch {
    return showSavedGridTasks(t.tasksUnavailable);
  }
  await showGridTasks();
}

// Kept for the rounds without a signal: what the list shows of each task (no resident's words
// or number; its page is read online), for the leader who read it; forgotten at sign-out.
// Shown as last read, said so, without 改派 (the network's).
const GRID_TASK_KEPT = ["id", "title", "status", "due_at", "overdue", "grid_code", "household_id", "assignee_id", "assignee_name"];
let gridTasksSavedAt = null;

/** The grid tasks as kept on the phone (offline, or the server unreadable), else `none` said. */
async function showSavedGridTasks(none) {
  const saved = keptCopy(GRID_TASKS_KEY, tokenUser(getToken()));
  if (!Array.isArray(saved?.tasks)) {
    gridTasks = [];
    $("grid-task-filter").hidden = true;
    $("grid-task-summary").textContent = "";
    $("grid-task-list").innerHTML = `<li class="muted">${escapeHtml(none)}</li>`;
    return;
  }
  gridTasks = saved.tasks;
  assignees = [];
  gridTasksSavedAt = saved.at;
  await showGridTasks();
}

/** The grids' tasks as last read: the grid chosen's (or all), a count of each kind, and the
 * first of the open ones and of those awaiting the callback, each with its own "more". */
async function showGridTasks() {
  const steps = await keptSteps();
  const filter = $("grid-task-filter");
  const codes = [...new Set(gridTasks.map((task) => task.grid_code))].sort();
  let grid = localStorage.getItem(GRID_TASKS_GRID) || "";
  if (!codes.includes(grid)) grid = "";
  filter.hidden = codes.length < 2 && !grid;
  const select = $("grid-task-grid");
  select.innerHTML = `<option value="">${escapeHtml(t.allGrids(gridTasks.length))}</option>`
    + codes.map((code) => `<option value="${escapeHtml(code)}">${escapeHtml(t.oneGrid(code, gridTasks.filter((task) => task.grid_code === code).length))}</option>`).join("");
  select.value = grid;
  const listed = grid ? gridTasks.filter((task) => task.grid_code === grid) : gridTasks;
  const open = listed.filter((task) => !awaiting(task));
  const callbacks = listed.filter(awaiting);
  const saved = gridTasksSavedAt ? `${t.gridTasksSaved(localTime(new Date(gridTasksSavedAt)), !navigator.onLine)} ` : "";
  $("grid-task-summary").textContent = saved + (listed.length ? t.gridTasksSummary({
    open: open.length, escalated: open.filter((task) => task.status === "escalated").length,
    overdue: open.filter((task) => task.overdue).length, awaiting: callbacks.length,
  }) : "");
  const doors = new Map(cachedHouseholds().map((h) => [h.id, h.label]));
  $("grid-task-list").after(gridTaskStatus); // not drawn away with the list
  // The open ones and those awaiting the callback each show their first: past many open
  // tasks (a community admin's grids), every callback fell under "more not shown".
  const shown = (list, kind) => list.slice(0, gridTasksShown[kind]).map((task) => gridTaskItem(task, doors)).join("")
    + (list.length > gridTasksShown[kind]
      ? `<li class="more"><button type="button" data-more="${kind}">${escapeHtml(t.gridTasksMore(list.length - gridTasksShown[kind]))}</button></li>` : "");
  redraw($("grid-task-list"), listed.length
    ? shown(open, "open") + shown(callbacks, "awaiting")
    : `<li class="muted">${escapeHtml(t.gridTasksNone)}</li>`);
  placeGridTaskStatus();
  await markKept(steps);
}

$("grid-task-grid").addEventListener("change", (e) => {
  if (e.target.value) localStorage.setItem(GRID_TASKS_GRID, e.target.value);
  else localStorage.removeItem(GRID_TASKS_GRID);
  gridTasksShown = { open: GRID_TASKS_FIRST, awaiting: GRID_TASKS_FIRST };
  showGridTasks().catch(() => {});
});

$("grid-task-list").addEventListener("click", async (e) => {
  const more = e.target.closest("button[data-more]");
  if (more) {
    const kind = more.dataset.more;
    const first = gridTasksShown[kind];
    gridTasksShown[kind] += GRID_TASKS_MORE;
    await showGridTasks();
    // The focus goes on to the first task just shown, where the button stood.
    const kinds = gridTasks.filter((task) => (kind === "awaiting") === awaiting(task));
    const grid = $("grid-task-grid").value;
    const next = (grid ? kinds.filter((task) => task.grid_code === grid) : kinds)[first];
    if (next) $("grid-task-list").querySelector(`li[data-id="${next.id}"] button.open-task`)?.focus();
    return;
  }
  const button = e.target.closest("button[data-reassign]");
  if (!button) return;
  const task = gridTasks.find((x) => String(x.id) === button.dataset.reassign);
  const select = button.parentElement.querySelector("select");
  const to = assignees.find((u) => String(u.id) === select.value);
  if (!task) return;
  if (!to) {
    // Pressed with "改派给…" still showing: it did nothing, as if the tap was lost.
    sayGridTask(task.id, t.chooseFirst, true);
    select.focus();
    return;
  }
  button.disabled = true;
  let said;
  let refused = false;
  try {
    await apiOnce(`/api/v1/tasks/${task.id}/assign`, { method: "POST", body: { assignee_id: to.id, note: "" }, once: task.updated_at });
    said = t.reassigned(task.title, to.display_name || to.username);
  } catch (error) {
    [said, refused] = [reassignProblem(error, to.display_name || to.username), true];
  }
  await Promise.all([loadGridTasks(), loadTasks()]); // taken on themself, it is in "my tasks"
  sayGridTask(task.id, said, refused);
});

/** A refused reassign said in the app's words, the server's beneath: it came as the server
 * put it, in English and naming the account (`worker02 is on approved leave until …`). In
 * English, the server's words alone where no sentence of ours says more. */
function reassignProblem(error, name) {
  const words = t.reassignRefused;
  if (!error?.status) return { why: words.network, server: "" };
  const body = error.body || {};
  const server = body.detail || body.title || `HTTP ${error.status}`;
  if (error.status === 409 && body.leave?.end_date) return { why: words.leave(name, body.leave.end_date), server };
  const sentence = words[error.status] ?? (lang === "zh" ? words.other : null);
  if (!sentence) return { why: server, server: "" };
  return { why: typeof sentence === "function" ? sentence(name) : sentence, server };
}

// A task's own page (web/src/task_detail.js): the resident's words and number, the door, the
// history and the steps the caller may take, a tap on its title away in either list. A step
// with no answer is kept on the phone, said on its card, and sent with the app's syncs; left
// waiting online (the answer lost), it is tried again as a sync is.
const detail = taskDetail({
  lang, dialog: $("task-detail"), localTime, changed: () => Promise.all([loadTasks(), loadGridTasks()]),
  waiting: (error) => {
    markKept().catch(() => {});
    if (error && navigator.onLine) retrySyncLater(error);
  },
});
// 上报问题: a problem found on the rounds opened as a task (web/src/report_problem.js), a
// worker's and a leader's, placed where the phone stands or at one of their households. Kept on
// the phone until sent, as visits are, and sent with them (`sync`).
const problems = reportProblem({
  lang, section: $("report-problem"), households: () => cachedHouseholds(), locate, localTime,
  opened: () => Promise.all([loadTasks(), loadGridTasks()]),
  labelled: (hours) => labelFollowUpUrgencies(hours),
});
const showReportProblem = () => {
  $("report-problem").hidden = !["worker", "grid_leader"].includes(tokenClaims(getToken()).role);
  problems.show();
};

for (const list of ["tasks", "grid-task-list"]) {
  $(list).addEventListener("click", (e) => {
    const opener = e.target.closest("button[data-open]");
    if (opener) detail.open(Number(opener.dataset.open));
  });
}

$("tasks").addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-action]");
  if (!button) return;
  let note = "";
  if (button.dataset.action === "return") {
    const answer = prompt(t.returnReason);
    if (answer === null) return; // cancelled: nothing is sent
    note = answer.trim();
    if (!note) {
      alert(t.returnReasonRequired);
      return;
    }
  }
  button.disabled = true;
  // Kept on the phone until answered, as a step taken on the task's page is: pressed with no
  // signal, or its answer lost, it waits on the card as 待发送 and goes with the syncs, once.
  const item = button.closest("li[data-id]");
  const task = { id: Number(button.dataset.task), title: item?.querySelector(".open-task b")?.textContent || "", updated_at: button.dataset.version };
  const other = await waitingOther({ task, body: { action: button.dataset.action, note } }).catch(() => null);
  if (other && !confirm(t.replaceStep(t.actions[other.body.action] || other.body.action, t.actions[button.dataset.action]))) {
    button.disabled = false;
    return;
  }
  let record = null;
  try {
    record = await keepStep({ task, body: { action: button.dataset.action, note }, photos: [] });
  } catch { /* storage refused: sent as before, online only */ }
  if (!record) {
    try {
      await apiOnce(`/api/v1/tasks/${button.dataset.task}/transitions`, {
        method: "POST", body: { action: button.dataset.action, note }, once: button.dataset.version,
      });
    } catch (error) {
      alert(error.message);
    }
  } else if (navigator.onLine) {
    const outcome = await sendSteps();
    const refused = outcome.refused.find((o) => o.record.key === record.key);
    if (refused) {
      // Refused as the worker pressed it (the task changed meanwhile): said now, not kept.
      await dropStep(record.key).catch(() => {});
      alert(refused.refusal);
    } else if (!outcome.done.some((o) => o.record.key === record.key) && (await mySteps()).some((r) => r.key === record.key)) {
      retrySyncLater(outcome.error || new Error("kept"));
    }
  }
  await loadTasks();
});

function householdLabel(h) {
  return [h.building, h.unit, h.room].filter(Boolean).join("-") || `#${h.household_id ?? h.id}`;
}

// --- the week's plan --------------------------------------------------------------------------
// The plan (GET /visits/plan) lists every household still due this week, 300 and more, as a
// walking route. One a line it ran on for metres on a phone. It is now grouped by building (with
// its grid, for a relief grid's) and within by unit (a stairwell), in the order the route
// reaches them, so the worker finishes a stairwell, then a building, before walking on; a
// unit's households are its rooms, floor by floor, as buttons side by side. The building and
// unit of the next doors are open, the others collapsed with their counts until tapped; a
// household recorded on this device moves to a list of its own, collapsed, below. Tapping a
// household picks it in the visit form, whose picker follows the same order.
let planStops = [];
const planOpen = new Set(); // the groups the worker opened
const planKey = (h) => `${h.grid_code || ""}|${h.building || ""}`;

function groupBy(stops, key) {
  const groups = new Map();
  for (const h of stops) {
    const k = key(h);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(h);
  }
  return groups;
}

const numeric = (x) => { const n = parseInt(x, 10); return Number.isNaN(n) ? Infinity : n; };
const ascending = (x, y) => (x === y ? 0 : x < y ? -1 : 1);
const byFloor = (a, b) => ascending(numeric(a.floor), numeric(b.floor)) || ascending(numeric(a.room), numeric(b.room))
  || String(a.room || "").localeCompare(String(b.room || ""));

/** The plan's stops in the order shown: buildings as the route first reaches each, within a
 * building its units likewise, within a unit floor by floor. */
function planOrder(stops) {
  return [...groupBy(stops, planKey).values()]
    .flatMap((inBuilding) => [...groupBy(inBuilding, (h) => h.unit || "").values()].flatMap((inUnit) => [...inUnit].sort(byFloor)));
}

function planStop(h, full = false) {
  const id = h.household_id ?? h.id;
  const marks = [h.must_visit && t.mustVisit, h.overdue && t.planOverdue].filter(Boolean);
  const label = full ? householdLabel(h) : h.room || householdLabel(h);
  return `<li><button type="button" class="plan-stop${h.must_visit ? " must" : ""}${h.overdue ? " late" : ""}" data-household="${escapeHtml(id)}"
    title="${escapeHtml([householdLabel(h), ...marks].join(" · "))}">${escapeHtml(label)}${marks.length ? `<small>${escapeHtml(marks.join(" "))}</small>` : ""}</button></li>`;
}

const count = (list, flag) => list.filter((h) => h[flag]).length;
function groupHeading(title, stops) {
  const must = count(stops, "must_visit");
  const overdue = count(stops, "overdue");
  return `${title} <span class="count">${escapeHtml(t.planCount(stops.length))}</span>${must ? ` <b class="must">${t.mustVisit} ${must}</b>` : ""}${overdue ? ` <span class="overdue">${t.planOverdue} ${overdue}</span>` : ""}`;
}

function renderPlan() {
  const done = new Set(cachedHouseholds().filter((h) => !h.due).map((h) => h.id));
  const isDone = (h) => done.has(h.household_id ?? h.id);
  const todo = planStops.filter((h) => !isDone(h));
  const buildings = groupBy(todo, planKey);
  const grids = new Set(todo.map((h) => h.grid_code));
  $("plan-summary").textContent = todo.length
    ? t.planSummary(todo.length, buildings.size, count(todo, "must_visit"), count(todo, "overdue"))
    : planStops.length ? t.planAllDone : "";
  let next = true; // the next doors' building and unit open
  $("plan").innerHTML = [...buildings].map(([key, stops]) => {
    const grid = grids.size > 1 && stops[0].grid_code ? ` <small class="muted">${escapeHtml(stops[0].grid_code)}</small>` : "";
    const units = groupBy(stops, (h) => h.unit || "");
    const open = next || planOpen.has(key);
    const body = units.size === 1 ? `<ol class="plan-stops">${stops.map((h) => planStop(h)).join("")}</ol>`
      : [...units].map(([unit, inUnit]) => {
        const unitKey = `${key}|${unit}`;
        const unitOpen = next || planOpen.has(unitKey);
        next = false;
        return `<details class="plan-unit" data-key="${escapeHtml(unitKey)}"${unitOpen ? " open" : ""}><summary>${groupHeading(escapeHtml(t.planUnit(unit)), inUnit)}</summary>
          <ol class="plan-stops">${inUnit.map((h) => planStop(h)).join("")}</ol></details>`;
      }).join("");
    next = false;
    return `<li class="plan-group" data-key="${escapeHtml(key)}" data-count="${stops.length}"><details class="plan-building" data-key="${escapeHtml(key)}"${open ? " open" : ""}>
      <summary>${groupHeading(`<b>${escapeHtml(t.planBuilding(stops[0].building))}</b>${grid}`, stops)}</summary>${body}</details></li>`;
  }).join("") || (planStops.length ? "" : `<li class="muted">—</li>`);
  const recorded = planStops.filter(isDone);
  $("plan-done").hidden = recorded.length === 0;
  $("plan-done-title").textContent = t.planDone(recorded.length);
  $("plan-done-list").innerHTML = recorded.map((h) => planStop(h, true)).join("");
}

// Which groups the worker opened stays so when the plan is drawn again (after a visit).
$("plan").addEventListener("toggle", (e) => {
  const key = e.target.dataset?.key;
  if (key === undefined) return;
  if (e.target.open) planOpen.add(key);
  else planOpen.delete(key);
}, true);

for (const list of ["plan", "plan-done-list"]) {
  $(list).addEventListener("click", (e) => {
    const stop = e.target.closest("button.plan-stop");
    if (!stop || editing) return;
    $("household").value = stop.dataset.household;
    showRegister();
    $("visit-form").scrollIntoView({ block: "start" });
  });
}

// 未诉先办: what keeps coming back to my grids, to look out for on the rounds (a worker's and
// a leader's; read afresh for whoever signed in). Offline, the card says so. Their community's
// task deadlines label the urgencies of 上报问题 too.
async function loadRecurring() {
  const card = $("recurring-card");
  if (!["worker", "grid_leader"].includes(tokenClaims(getToken()).role)) {
    card.hidden = true;
    return;
  }
  let me;
  try {
    me = await api("/api/v1/auth/me");
  } catch {
    return;
  }
  if (me.community_code) problems.useCommunity(me.community_code).catch(() => {});
  if (!me.community_code || !(me.grid_codes || []).length) return;
  recurringSection(card, lang, { compact: true, openTask: (id) => detail.open(id) }).show({ community: me.community_code });
}
// The plan read last is kept on the phone (PLAN_KEY: the worker, the week, when, the stops):
// opened again with no signal (a stairwell, the phone had closed the app), the card said only
// "本周计划暂不可用", no household due, no count. It shows the plan kept, said as such, with
// the households kept (what was recorded here since marked), and reads it again once online.
let planSaved = false;
const PLAN_KEPT = ["household_id", "grid_code", "building", "unit", "floor", "room", "must_visit", "overdue", "visits_per_week", "visits_this_week"];
async function loadPlanAndHouseholds() {
  const user = tokenUser(getToken());
  const week = isoWeek();
  let plan = [];
  planSaved = false;
  try {
    // The route's order, its buildings kept together (the groups the plan shows).
    plan = planOrder(items(await api(`/api/v1/visits/plan?week=${week}`)));
    planStops = plan;
    // Kept for offline use: only what the card shows (no tags, no location), only for this worker.
    const stops = plan.map((h) => Object.fromEntries(PLAN_KEPT.map((k) => [k, h[k]])));
    keepCopy(PLAN_KEY, user, { week, stops });
  } catch {
    const saved = keptCopy(PLAN_KEY, user);
    if (saved?.week === week) {
      planSaved = true;
      planStops = saved.stops;
      // A household recorded here since is no longer late (as `visitedHere` marks it).
      const kept = new Map(cachedHouseholds().map((h) => [h.id, h]));
      for (const h of planStops) if ((kept.get(h.household_id ?? h.id)?.left ?? 0) < visitsLeft(h)) h.overdue = false;
      $("plan-saved").textContent = t.planSaved(localTime(new Date(saved.at)), !navigator.onLine);
    } else {
      planStops = [];
      $("plan-summary").textContent = "";
      $("plan").innerHTML = `<li class="muted">${t.noPlan}</li>`;
    }
  }
  $("plan-saved").hidden = !planSaved;
  // The visit form offers the plan's households first, then every household of my grids. The
  // plan holds the households still due this week, each with the visits it still needs (`left`:
  // one, or two for an old person living alone not yet visited): the others are visited. The
  // plan kept keeps the households kept too, with what was recorded here since.
  let households = plan.map((h) => ({ ...h, id: h.household_id ?? h.id, left: visitsLeft(h) }));
  // Each household's register facts as the list gives them (the door form's 住户信息有变化？
  // shows and corrects them); not read this time, those kept from the last read stay.
  const facts = new Map(cachedHouseholds().filter(factsKnown).map((h) => [h.id, h]));
  try {
    if (planSaved) throw new Error("the plan kept");
    const all = await apiPages("/api/v1/households", { pick: items, maxPages: 30 });
    for (const h of all) facts.set(h.id, h);
    const seen = new Set(households.map((h) => h.id));
    households = households.concat(all.filter((h) => !seen.has(h.id)).map((h) => ({ ...h, left: 0 })));
  } catch { /* offline: keep what we have */ }
  if (households.length) {
    // Visits waiting in this device's queue are not in the plan's count yet (an attempt, no
    // one at home, is never in it); a visit stored whose register correction waits is.
    const queued = (await listQueued()).filter((r) => ["pending", "rejected"].includes(r.state) && countsInWeek(r.visit)).map((r) => r.visit.household_id);
    storeHouseholds(households.map((h) => ({
      id: h.id, label: householdLabel(h), left: h.left, due: h.left > 0, ...registerFacts(facts.get(h.id)),
    })));
    for (const id of queued) visitedHere(id);
  }
  showTasks().catch(() => {});
  if (gridTasks.length) showGridTasks().catch(() => {});
  const cached = cachedHouseholds();
  // Read again (back online), the household the worker had picked stays picked.
  const picked = $("household").value;
  $("household").innerHTML = cached.map((h) => `<option value="${h.id}">${escapeHtml(h.label)}</option>`).join("");
  const first = cached.find((h) => h.due);
  if (picked && cached.some((h) => String(h.id) === picked)) $("household").value = picked;
  else if (first) $("household").value = String(first.id);
  if (!editing && picked !== $("household").value) showRegister();
  if (planStops.length) renderPlan();
}

// The list is kept with the user it was read for (HOUSEHOLDS_USER_KEY), as the plan and the tasks
// are (`keepCopy`): signed in where nothing can be read (no signal), the next worker on a shared
// phone was offered the last one's households (their addresses) as due. Another's is no list.
const householdsOwner = () => localStorage.getItem(HOUSEHOLDS_USER_KEY);
const keptHouseholds = () => JSON.parse(localStorage.getItem(HOUSEHOLDS_KEY) || "[]");
const cachedHouseholds = () => {
  const user = tokenUser(getToken());
  return user && householdsOwner() === user ? keptHouseholds() : [];
};
const storeHouseholds = (list, user = tokenUser(getToken())) => {
  if (!user) return;
  localStorage.setItem(HOUSEHOLDS_KEY, JSON.stringify(list));
  localStorage.setItem(HOUSEHOLDS_USER_KEY, user);
};
const labelOf = (id) => cachedHouseholds().find((h) => h.id === id)?.label || `#${id}`;

// --- 住户信息有变化？ the register corrected at the door ----------------------------------------
// The worker at the door learns that a flat is let now, someone moved in or out, an old man lives
// alone now. The visit form's fold shows the household's register facts as the app last read
// them (kept with the cached households: occupancy, members, care tags; not the phone, which is
// the office's) and takes the worker's changes. Only the fields changed go, with the visit, in
// the queue (`register_changes`): once the visit is stored the sync sends them to the household
// (queue.js `sendCorrections`), and the cached household takes what the server answered. The
// care tags go as those ticked and unticked (`add_tags`, `remove_tags`), not as the whole list:
// a tag the office set after the app read the list stays (the list from the door took it off).
const REGISTER_FIELDS = ["occupancy", "members", "tags"];
// The facts are residents' sensitive data (低保, 残疾): kept with the worker who read them (`by`),
// shown to nobody else on a shared phone, and dropped when the session ends.
const factsKnown = (h) => Array.isArray(h?.tags) && h.by === tokenUser(getToken());
/** A household's register facts as the app keeps them (none known: none kept). */
const registerFacts = (h) => (factsKnown(h) || (h && !("by" in h) && Array.isArray(h.tags))
  ? { occupancy: h.occupancy ?? null, members: h.members ?? null, tags: [...h.tags], by: tokenUser(getToken()) } : {});
/** The cached households less their register facts (the session ended: they were its worker's). */
function forgetFacts() {
  const owner = householdsOwner();
  if (owner) storeHouseholds(keptHouseholds().map(({ occupancy, members, tags, by, ...kept }) => kept), owner);
}
const tagWord = (tag) => CARE_TAGS[tag]?.[lang === "zh" ? 0 : 1] || tag;
const occupancyWord = (o) => (o ? OCCUPANCIES[o]?.[lang === "zh" ? 0 : 1] || o : t.occupancyUnknown);

$("reg-occupancy").innerHTML = `<option value="">${escapeHtml(t.occupancyUnknown)}</option>`
  + Object.keys(OCCUPANCIES).map((o) => `<option value="${o}">${escapeHtml(occupancyWord(o))}</option>`).join("");
$("reg-tags").insertAdjacentHTML("beforeend", Object.keys(CARE_TAGS).map((tag) =>
  `<label class="inline"><input type="checkbox" name="reg_tags" value="${tag}"> <span>${escapeHtml(tagWord(tag))}</span></label>`).join(""));

const pickedHousehold = () => cachedHouseholds().find((h) => String(h.id) === $("household").value);
// The facts the fold was filled with: the worker's changes are measured against what they saw.
// (Against the cache at saving, a list read meanwhile with the office's newer facts made the
// older ones still on screen count as changes, and the correction undid the office's.)
let shownFacts = null;

/** Fill the fold with the picked household's facts as last read, `changes` (a refused visit's,
 * opened to edit) over them. */
function showRegister(changes = null) {
  const h = pickedHousehold();
  const known = factsKnown(h);
  shownFacts = known ? { id: h.id, ...registerFacts(h) } : null;
  $("register-fields").hidden = !known;
  $("reg-members").classList.remove("invalid");
  if (!known) {
    $("register-as-read").textContent = h ? t.registerNotRead : "";
    return;
  }
  const said = [occupancyWord(h.occupancy), h.members == null ? null : t.membersCount(h.members),
    h.tags.length ? h.tags.map(tagWord).join(lang === "zh" ? "、" : ", ") : t.noTags].filter(Boolean);
  $("register-as-read").textContent = t.asRead(said.join(" · "));
  const now = withCorrection(registerFacts(h), changes);
  // The register takes no "not recorded" back for a recorded occupancy: offered only while none is.
  $("reg-occupancy").querySelector("option[value='']").hidden = Boolean(h.occupancy);
  $("reg-occupancy").value = now.occupancy ?? "";
  $("reg-members").value = now.members ?? "";
  for (const box of $("reg-tags").querySelectorAll("input[name=reg_tags]")) box.checked = now.tags.includes(box.value);
}

/** The facts the worker changed in the fold, as PATCH /households/{id} takes them: {changes}
 * (only those changed, with the values changed as read, `expected`; empty: none), or {problem}
 * when the members typed are no count, or some for a household left vacant. A members field
 * emptied is no change (the register takes no "unknown" back). */
function registerChanges() {
  const picked = pickedHousehold();
  if (!factsKnown(picked)) return { changes: {} };
  const h = shownFacts?.id === picked.id ? shownFacts : picked;
  const changes = {};
  const occupancy = $("reg-occupancy").value;
  if (occupancy && occupancy !== h.occupancy) changes.occupancy = occupancy;
  const members = $("reg-members").value.trim();
  if (members !== "") {
    const n = Number(members);
    if (!Number.isInteger(n) || n < 0 || n > 100) return { problem: t.membersInvalid };
    if (n !== h.members) changes.members = n;
    // The register refuses both at once (422): the worker, at the door, knows which one is wrong.
    if (n > 0 && (changes.occupancy ?? h.occupancy) === "vacant" && "members" in changes) return { problem: t.vacantMembers };
  }
  const tags = [...$("reg-tags").querySelectorAll("input[name=reg_tags]:checked")].map((box) => box.value);
  const added = tags.filter((tag) => !h.tags.includes(tag));
  const removed = h.tags.filter((tag) => !tags.includes(tag));
  if (added.length) changes.add_tags = added;
  if (removed.length) changes.remove_tags = removed;
  // The values changed as the fold read them: the server refuses (409, `changed`) one the office
  // changed since, rather than undo it.
  const read = Object.fromEntries(["occupancy", "members"].filter((k) => k in changes).map((k) => [k, h[k] ?? null]));
  if (Object.keys(read).length) changes.expected = read;
  return { changes };
}

/** Register facts with a correction over them: its values, its tags added and taken off (a
 * correction queued by an earlier version of the app carries the whole list, `tags`). */
function withCorrection(facts, changes) {
  const { add_tags: added = [], remove_tags: removed = [], expected: _read, ...values } = changes || {};
  const now = { ...facts, ...values };
  if (Array.isArray(now.tags)) {
    const kept = now.tags.filter((tag) => !removed.includes(tag));
    now.tags = [...kept, ...added.filter((tag) => !kept.includes(tag))];
  }
  return now;
}

/** The households a sync corrected take the facts the server answered (the plan's cadence
 * follows the care tags: read again after it, online). */
function correctedHere(corrected) {
  const list = cachedHouseholds();
  for (const { household_id, changes, household } of corrected) {
    const h = list.find((x) => x.id === household_id);
    if (h) Object.assign(h, Array.isArray(household?.tags) ? registerFacts(household) : withCorrection(h, changes));
  }
  storeHouseholds(list);
  if (!editing && corrected.some((c) => String(c.household_id) === $("household").value)) showRegister();
}

$("household").addEventListener("change", () => showRegister());

/** Why a correction was refused: {why, server}, as a refused visit's is said. */
function correctionRefusalOf(record) {
  const refusal = record.refusal || {};
  const fields = Object.entries(refusal.errors?.json || {}).map(([k, v]) => `${k}: ${[v].flat().join(" ")}`);
  const server = [refusal.detail, ...fields].filter(Boolean).join(" ");
  if (refusal.changed) return { why: t.changedSinceRead(changesText(refusal.changed)), server };
  const zh = t[`dismiss${refusal.status}`];
  return zh ? { why: zh, server } : { why: server, server: "" };
}
/** The changes a correction carried, in words: "居住情况：租住 · 常住人数：1". */
function changesText(changes) {
  const label = { tags: "careTags", add_tags: "tagsAdded", remove_tags: "tagsRemoved" };
  const tagList = (v) => (v.length ? v.map(tagWord).join(lang === "zh" ? "、" : ", ") : t.noTags);
  return Object.entries(changes || {}).filter(([k]) => k !== "expected").map(([k, v]) => `${t[label[k] || k]}: ${
    k === "occupancy" ? occupancyWord(v) : k in label ? tagList(v) : v}`).join(" · ");
}

// What the week's count takes (api/services/ledger.py): a visit whatever its outcome but
// "无人在家", an attempt the household stays due after. The app took that door off the plan: the
// worker walked on and never came back to it that week.
const countsInWeek = (visit) => visit.outcome !== "nobody_home";

// A household's visits still needed this week, by the plan (its cadence less the visits it had).
// The app took one visit as the week's: a household due twice a week left the plan after the
// first, and the worker did not come back to it that week.
const visitsLeft = (h) => Math.max(1, (h.visits_per_week ?? 1) - (h.visits_this_week ?? 0));

/** Count a visit of household `id` recorded on this device: one visit fewer still needed this
 * week (none left: done here), and no longer late (it is next due a few days on). */
function visitedHere(id) {
  const list = cachedHouseholds();
  const h = list.find((x) => x.id === id);
  if (!h) return;
  h.left = Math.max(0, (h.left ?? (h.due ? 1 : 0)) - 1);
  h.due = h.left > 0;
  storeHouseholds(list);
  const stop = planStops.find((x) => (x.household_id ?? x.id) === id);
  if (stop) stop.overdue = false;
}

/** Take back a visit counted here that the server never stored (refused, then discarded or
 * corrected to another door): its household needs it again, if the plan had it due. Kept
 * visited, the household stayed off the plan and the worker did not go back. */
function unvisitedHere(visit) {
  const id = visit.household_id;
  const stop = planStops.find((x) => (x.household_id ?? x.id) === id);
  if (!countsInWeek(visit) || !stop) return;
  const list = cachedHouseholds();
  const h = list.find((x) => x.id === id);
  if (!h) return;
  h.left = Math.min(visitsLeft(stop), (h.left ?? 0) + 1);
  h.due = h.left > 0;
  storeHouseholds(list);
}

/** Mark a household visited here by `visit` (an attempt leaves it due) and answer the next
 * one still due after it in the list (round the end), else simply the next one. */
function nextHousehold(visit) {
  const id = visit.household_id;
  if (countsInWeek(visit)) visitedHere(id);
  const list = cachedHouseholds();
  const at = list.findIndex((h) => h.id === id);
  const after = [...list.slice(at + 1), ...list.slice(0, Math.max(at, 0))];
  return (after.find((h) => h.due) || after[0] || list[at])?.id;
}

/**
 * Why the server refused a queued visit: {why, server}. In Chinese, `why` is the app's own
 * sentence (web/src/reasons.js) and `server` the server's English, shown small beneath for
 * whoever helps the worker; what the table does not know is said in the server's words.
 */
function refusalOf(record) {
  const refusal = record.refusal || { reason: record.reason };
  const zh = lang === "zh" ? refusalZh(refusal) : null;
  return zh ? { why: zh, server: record.reason || "" } : { why: record.reason || "", server: "" };
}

/** Why a whole batch was refused (the error `syncQueue` threw with its problem), likewise. */
function problemOf(error) {
  const body = error.problem || {};
  const server = body.detail || body.title || `HTTP ${error.status}`;
  const zh = lang === "zh" ? problemZh(error.status, body) : null;
  return zh ? { why: t.syncFailed + zh, server } : { why: t.syncFailed + server, server: "" };
}

const explained = ({ why, server }) => `<span class="why">${escapeHtml(why)}</span>${server
  ? `<small class="server-reason">${escapeHtml(server)}</small>` : ""}`;

async function showQueue() {
  const user = tokenUser(getToken());
  const queued = (await listQueued()).filter((r) => r.user === user);
  const pending = queued.filter((r) => r.state === "pending");
  $("queue-count").textContent = String(pending.length);
  // A visit the server refused stays here until the worker corrects it (it then syncs again)
  // or discards it, or a later sync sends it again and it is stored (a refusal that depends on
  // the server: queue.js `RETRIED_REFUSALS`): named by its household and time, with the reason.
  $("queue").innerHTML = queued.filter((r) => r.state === "overtaken").map(overtakenItem).join("")
    + queued.filter((r) => r.state === "correction-refused" || r.state === "correcting").map(correctionItem).join("")
    + queued.filter((r) => r.state === "rejected").map((r) => {
    const v = r.visit;
    const when = v.visited_at ? localTime(new Date(v.visited_at)) : "";
    return `<li class="rejected" data-id="${escapeHtml(r.id)}"><b>${escapeHtml(labelOf(v.household_id))}</b>
      · ${escapeHtml(t.outcomes[v.outcome] || v.outcome)} · ${escapeHtml(when)}${v.follow_up && v.follow_up_title
        ? ` · <span class="follow-up-title">${escapeHtml(v.follow_up_title)}</span>` : ""}
      <div class="error reason">${t.refusedBy}: ${explained(refusalOf(r))}${t.resentLater && RETRIED_REFUSALS.includes(r.refusal?.code)
        ? `<small class="resent-later">${escapeHtml(t.resentLater)}</small>` : ""}</div>
      <button type="button" class="edit">${t.edit}</button><button type="button" class="discard">${t.discard}</button></li>`;
  }).join("");
  await showHandover();
}

// Visits another user left on this phone, never sent: a worker who left, their account switched
// off, can no longer sign in to send them. The community admin or a grid leader, signed in on the
// phone, sends them as theirs (queue.js `handOver`, POST /api/v1/visits/handover; a leader those
// of the grids they lead, the others stay here for the admin); anyone else sees nothing.
async function showHandover() {
  const token = getToken();
  const me = tokenUser(token);
  const counts = new Map();
  if (["community_admin", "grid_leader"].includes(tokenClaims(token).role)) {
    for (const r of await listQueued()) {
      // A stored visit whose correction a handover could not send yet ("correcting") too.
      if (r.user && r.user !== me && ["pending", "rejected", "correcting"].includes(r.state)) counts.set(r.user, (counts.get(r.user) || 0) + 1);
    }
  }
  $("handover").hidden = counts.size === 0;
  $("handover-list").innerHTML = [...counts].map(([user, n]) => `<p>${escapeHtml(t.handoverNote(n, user))}
    <button type="button" data-worker="${escapeHtml(user)}">${escapeHtml(t.handoverSend)}</button></p>`).join("");
}
$("handover-list").addEventListener("click", async (e) => {
  const worker = e.target.dataset?.worker;
  if (!worker) return;
  e.target.disabled = true;
  try {
    const sent = await handOver(worker);
    // A leader sends the visits of the grids they lead: the others stay for the admin.
    const left = (sent.rejected || sent.correctionsLeft) && tokenClaims(getToken()).role === "grid_leader" ? ` ${t.handoverLeft}` : "";
    const corrections = sent.corrected || sent.correctionsRefused || sent.correctionsHeld
      ? ` ${t.handoverCorrections(sent.corrected, sent.correctionsRefused, sent.correctionsHeld)}` : "";
    $("handover-result").textContent = t.handoverDone(sent.stored, sent.rejected) + left + corrections;
  } catch (err) {
    $("handover-result").textContent = err.status === 409 ? t.handoverActive : (err.problem?.detail || t.handoverFailed);
  }
  await showQueue();
});

// An edit the server never got: a parked visit sent again automatically was stored as it was
// while the worker edited it (queue.js `leave`, `requeueEdited`). A stored visit cannot be
// changed (the API has no visit PATCH): the app says so, shows the edit beside the stored
// version for the worker to note down, and keeps it until they discard it.
/** A follow-up's list and urgency, as a summary says them: " (问题, 危及生命财产)". */
function followUpTags(v) {
  const tags = [v.follow_up_kind && (t.listKinds[v.follow_up_kind] || v.follow_up_kind),
    v.follow_up_urgency && (TASK_TEXT[lang].urgencies[v.follow_up_urgency] || v.follow_up_urgency)].filter(Boolean);
  return tags.length ? ` (${tags.join(", ")})` : "";
}
function visitFields(v) {
  const parts = [t.outcomes[v.outcome] || v.outcome, v.notes && `${t.notes}: ${v.notes}`,
    v.follow_up && `${t.followUp}${followUpTags(v)}`
      + `${v.follow_up_title ? `: ${v.follow_up_title}` : ""}${v.follow_up_note ? `${v.follow_up_title ? " — " : ": "}${v.follow_up_note}` : ""}`];
  if (v.household_id !== undefined) parts.unshift(labelOf(v.household_id));
  return parts.filter(Boolean).join(" · ");
}
// A stored visit's register correction: waiting to be sent, or refused (said as a refused visit
// is, with the server's words), kept until the worker has read it.
function correctionItem(r) {
  const label = `<b>${escapeHtml(labelOf(r.visit.household_id))}</b> · ${escapeHtml(changesText(r.register_changes))}`;
  if (r.state === "correcting") return `<li class="correcting" data-id="${escapeHtml(r.id)}">${label}<div class="muted">${escapeHtml(t.correctionWaiting)}</div></li>`;
  return `<li class="correction-refused" data-id="${escapeHtml(r.id)}">${label}
    <div class="error reason">${escapeHtml(t.correctionRefused)}: ${explained(correctionRefusalOf(r))}</div>
    <button type="button" class="discard">${t.discardCorrection}</button></li>`;
}
function overtakenItem(r) {
  const v = r.visit;
  const when = v.visited_at ? localTime(new Date(v.visited_at)) : "";
  return `<li class="overtaken" data-id="${escapeHtml(r.id)}"><b>${escapeHtml(labelOf(v.household_id))}</b> · ${escapeHtml(when)}
    <div class="error overtaken-why">${escapeHtml(t.overtaken)}</div>
    <div class="your-edit">${escapeHtml(t.yourEdit)}: ${escapeHtml(visitFields(v))}</div>
    <small class="stored-version">${escapeHtml(t.storedVersion)}: ${escapeHtml(visitFields(r.stored || {}))}</small>
    <button type="button" class="discard">${t.discardEdit}</button></li>`;
}

// Visits the server stored but graded as weak evidence (too far from the door, outside the
// grid, a mock or poor fix, a wrong clock): named like refused ones, with the grade and why in
// the worker's language (figures where the server gave them), until the worker has read them.
const GRADE_ORDER = ["doubtful", "suspect"];
function weaknessOf(evidence) {
  const codes = (evidence?.reasons || []).join(", ");
  const words = evidenceWords(evidence, lang);
  if (words) return { grade: words.grade, why: words.lines, server: codes };
  return { grade: evidence?.grade || "", why: [codes], server: "" };
}

async function showFlagged() {
  const user = tokenUser(getToken());
  const flagged = (await listFlagged()).filter((f) => f.user === user);
  $("flagged").innerHTML = flagged.map((f) => {
    const when = f.visited_at ? localTime(new Date(f.visited_at)) : "";
    const { grade, why, server } = weaknessOf(f.evidence);
    return `<li class="flagged grade-${escapeHtml(f.evidence?.grade || "")}" data-id="${escapeHtml(f.id)}"><b>${escapeHtml(labelOf(f.household_id))}</b>
      · ${escapeHtml(t.outcomes[f.outcome] || f.outcome || "")} · ${escapeHtml(when)}
      <div class="weak"><span class="grade">${escapeHtml(t.storedWeak(grade))}</span>${why.map((line) =>
        `<span class="why">${escapeHtml(line)}</span>`).join("")}${server
        ? `<small class="server-reason">${escapeHtml(t.weakReasons)}: ${escapeHtml(server)}</small>` : ""}</div>
      <button type="button" class="dismiss">${t.dismiss}</button></li>`;
  }).join("");
}
$("flagged").addEventListener("click", async (e) => {
  const item = e.target.closest("li.flagged");
  if (!item || !e.target.closest("button.dismiss")) return;
  await dismissFlagged(item.dataset.id);
  await showFlagged();
});

/** What a sync says of the visits it stored as weak evidence (empty: none). */
function flaggedSummary(flagged) {
  if (!flagged?.length) return "";
  const present = GRADE_ORDER.filter((g) => flagged.some((f) => f.evidence?.grade === g));
  const words = present.map((g) => gradeWord(g, lang) || g);
  return t.flaggedCount(flagged.length, words);
}

// Editing a refused visit: the form takes its fields; saving puts it back in the queue, same
// id, place and time (the server stored nothing of it), to sync again.
let editing = null;
function endEditing() {
  editing = null;
  $("record").textContent = t.recordButton;
  $("cancel-edit").hidden = true;
  $("visit-form").reset();
}
$("queue").addEventListener("click", async (e) => {
  const item = e.target.closest("li.rejected, li.overtaken, li.correction-refused");
  if (!item) return;
  const record = (await listQueued()).find((r) => r.id === item.dataset.id);
  if (!record) return;
  const label = labelOf(record.visit.household_id);
  if (e.target.closest("button.discard")) {
    const question = record.state === "overtaken" ? t.discardEditConfirm(label)
      : record.state === "correction-refused" ? t.discardCorrectionConfirm(label) : t.discardConfirm(label);
    if (!confirm(question)) return;
    await discard(record.id);
    // A refused visit was never stored: its household is due again (an edit overtaken was).
    if (record.state === "rejected") {
      unvisitedHere(record.visit);
      if (planStops.length) renderPlan();
    }
    if (editing?.id === record.id) endEditing();
    showStatus("");
    await showQueue();
  } else if (e.target.closest("button.edit")) {
    const v = record.visit;
    editing = record;
    const select = $("household");
    if (![...select.options].some((o) => o.value === String(v.household_id))) {
      select.insertAdjacentHTML("beforeend", `<option value="${v.household_id}">${escapeHtml(label)}</option>`);
    }
    select.value = String(v.household_id);
    $("outcome").value = v.outcome;
    $("notes").value = v.notes || "";
    $("follow-up").checked = Boolean(v.follow_up);
    $("follow-up-note").value = v.follow_up_note || "";
    $(v.follow_up_kind === "problem" ? "follow-up-problem" : "follow-up-need").checked = true;
    $("follow-up-title").value = v.follow_up_title || "";
    $("follow-up-urgency").value = v.follow_up_urgency || URGENCY_DEFAULT;
    showFollowUpKind();
    // The register changes it carries, over the household's facts as last read.
    showRegister(record.register_changes);
    $("register-fold").open = Boolean(record.register_changes);
    $("record").textContent = t.saveEdit;
    $("cancel-edit").hidden = false;
    const { why, server } = refusalOf(record);
    showStatus(`${t.editing(label)} ${t.refusedBy}: ${why}`, true, server);
    $("visit-form").scrollIntoView();
  }
});
$("cancel-edit").addEventListener("click", () => {
  endEditing();
  showStatus("");
});
// The session ended (or another begins): nothing of its work stays on screen for whoever holds
// the phone next. A refused visit half edited (its notes: a resident's circumstances) was left in
// the form with 保存修改, and the next user's visit typed there replaced it, kept under the
// first worker; a task's page stayed open over the sign-in form. The queue itself stays.
function clearSessionScreen() {
  endEditing();
  $("register-fold").open = false;
  showStatus("");
  detail.close();
}

// A sync that failed for a reason that passes is tried again while the page is open: the
// network lost though the phone says online (a lift, a basement: no `online` event comes when
// the signal does), the server restarting or busy (5xx, 429, 408, 409). After the server's
// Retry-After, else 30 s, doubling to at most 10 minutes; a sync that gets through starts the
// count again. Background Sync retries in the service worker where the browser has it; most
// browsers in China lack it, and the visit waited for the next visit recorded or the app
// opened again. A refusal the worker must act on (403, a session ended) is not retried.
const RETRY_SYNC_MS = 30_000;
const RETRY_SYNC_MAX_MS = 10 * 60_000;
let syncRetry = null;
let syncRetries = 0;
function retrySyncLater(error) {
  const passing = !(error instanceof SessionEnded)
    && (!error.status || error.status >= 500 || [408, 409, 429].includes(error.status));
  if (!passing || !getToken()) return;
  const asked = Number(error.retryAfter) * 1000;
  const wait = asked > 0 ? asked : RETRY_SYNC_MS * 2 ** syncRetries;
  syncRetries += 1;
  clearTimeout(syncRetry);
  syncRetry = setTimeout(sync, Math.min(wait, RETRY_SYNC_MAX_MS));
}

async function sync() {
  const started = Date.now();
  clearTimeout(syncRetry);
  syncRetry = null;
  let failed = false;
  try {
    const summary = await syncQueue();
    // The visits went; a correction after them the server put off (or no answer) is tried
    // again as a visit would be, backing off (the count starts again once nothing is held).
    if (summary.correctionsHeld && navigator.onLine) {
      retrySyncLater(summary.correctionsHeld);
      failed = Boolean(syncRetry); // not retried (a session ended): the others may schedule
    } else syncRetries = 0;
    const weak = flaggedSummary(summary.flagged);
    // A sync asked for while another was on its way answers for its own pass: the edits the
    // earlier pass overtook (the worker's own save asked for this one) are counted here too.
    const user = tokenUser(getToken());
    const overtaken = Math.max(summary.overtaken, (await listQueued())
      .filter((r) => r.state === "overtaken" && r.user === user && r.overtakenAt >= started).length);
    if (summary.corrected.length) {
      correctedHere(summary.corrected);
      if (!planSaved && navigator.onLine) loadPlanAndHouseholds().catch(() => {});
    }
    if (summary.rejected || overtaken || summary.correctionsRefused) {
      showStatus([overtaken && t.overtakenCount(overtaken), summary.rejected && t.refusedCount(summary.rejected),
        summary.correctionsRefused && t.correctionRefusedCount(summary.correctionsRefused), weak]
        .filter(Boolean).join(" "), true);
    }
    // A sync that only tried parked visits again, all still refused, stored nothing: said by
    // the list, which keeps them with their reason.
    else if (summary.created + summary.duplicate) showStatus(`${t.synced} (${summary.created + summary.duplicate})${weak ? (lang === "zh" ? "。" : ". ") + weak : ""}`, weak ? "warn" : false);
  } catch (error) {
    // Offline or the server is away: the queue keeps everything, nothing to say. A batch the
    // server refused whole (a problem) is said, as a refused visit is.
    if (error.status) showStatus(problemOf(error), true);
    // Offline, the `online` event syncs.
    if (navigator.onLine) retrySyncLater(error);
    failed = true;
  }
  // The problems reported on the rounds and kept on the phone go with the visits, on the same
  // triggers (back online, 立即同步, a visit saved, the app opened); the card says what came of
  // them. Not sent for a reason that passes, they are tried again as the visits are.
  try {
    await problems.sendWaiting();
  } catch (error) {
    if (!failed && navigator.onLine) retrySyncLater(error);
    failed = true;
  }
  // So do the steps taken on tasks and kept on the phone (pressed with no signal, their answer
  // lost): the task's card and page say what came of them.
  try {
    await detail.sendWaiting();
  } catch (error) {
    if (!failed && navigator.onLine) retrySyncLater(error);
  }
  await Promise.all([showQueue(), showFlagged()]);
}

function localIso(date) {
  const offset = -date.getTimezoneOffset();
  const shifted = new Date(date.getTime() + offset * 60000).toISOString().slice(0, 19);
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return `${shifted}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

// Indoors (a stairwell, concrete walls) a fresh satellite fix often never comes: the visit then
// takes the network's position, or the last the phone had of the past few minutes, its
// accuracy widened by how far a worker walks since (the server grades a visit by it: a coarse
// fix is a doubtful visit, not a lost one). Refused permission has no fallback.
const FIX_MAX_AGE_MS = 5 * 60_000;
const WALK_M_PER_S = 1.5;

function position(options) {
  return new Promise((resolve, reject) => navigator.geolocation.getCurrentPosition(resolve, reject, options));
}

/** A fix for a visit: {lon, lat, accuracy_m, coarse} (coarse: not a fresh satellite fix). */
async function locate() {
  try {
    const fix = await position({ enableHighAccuracy: true, timeout: 15000, maximumAge: 0 });
    return { lon: fix.coords.longitude, lat: fix.coords.latitude, accuracy_m: fix.coords.accuracy, coarse: false };
  } catch (error) {
    if (error?.code === 1) throw error; // PERMISSION_DENIED
  }
  const fix = await position({ enableHighAccuracy: false, timeout: 10000, maximumAge: FIX_MAX_AGE_MS });
  const age_s = Math.max(0, Date.now() - fix.timestamp) / 1000;
  const accuracy_m = Math.round(fix.coords.accuracy + WALK_M_PER_S * age_s);
  return { lon: fix.coords.longitude, lat: fix.coords.latitude, accuracy_m, coarse: true };
}

/** Why no position came, in the worker's words (the browser's own are English, and vague). */
const geoFailure = (error) => t.geoFailed + (t.geoWhy[error?.code] || error?.message || String(error));

$("outcome").innerHTML = Object.entries(t.outcomes).map(([k, v]) => `<option value="${k}">${v}</option>`).join("");
/** Say `text` under the form (or {why, server}: `server` small beneath it); `error` true for an
 * error, "warn" for something stored that needs the worker's attention. */
function showStatus(text, error = false, server = "") {
  const said = typeof text === "string" ? { why: text, server } : text;
  $("visit-status").innerHTML = said.why ? explained(said) : "";
  $("visit-status").classList.toggle("error", error === true);
  $("visit-status").classList.toggle("warn", error === "warn");
}

// What VisitItemSchema (api/resources/visits/schemas.py) refuses, checked before a visit is
// saved: the server would reject it at sync, after the worker has left the door. Lengths are
// counted in code points, as Python does (tests/api/test_web.py holds these to the schema).
const VISIT_LIMITS = {"notes": 4000, "follow_up_note": 2000, "follow_up_title": 200};
// A title is one line, as a task's: no control character, no bidirectional override or isolate
// (api/services/names.py has_control_characters).
const NOT_ONE_LINE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
function visitProblem(fields) {
  const labels = { notes: t.notes, follow_up_note: t.followUpNote, follow_up_title: t.followUpTitle };
  for (const [name, max] of Object.entries(VISIT_LIMITS)) {
    const value = fields[name] || "";
    if ([...value].length > max) return [name, t.tooLong(labels[name], max)];
    if (value.includes("\0")) return [name, t.noNul(labels[name])];
  }
  if (NOT_ONE_LINE.test(fields.follow_up_title || "")) return ["follow_up_title", t.titleOneLine(labels.follow_up_title)];
  if (fields.follow_up && !(fields.follow_up_note || "").trim()) return ["follow_up_note", t.needFollowUpNote];
  return null;
}
const FIELD_IDS = { notes: "notes", follow_up_note: "follow-up-note", follow_up_title: "follow-up-title" };
for (const id of Object.values(FIELD_IDS)) $(id).addEventListener("input", () => $(id).classList.remove("invalid"));
// Which list the follow-up goes on (需求清单 / 问题清单): asked only of a follow-up. The choice is
// sent only with one (the server ignores a kind without it), a need unless the worker says
// otherwise (what the server takes when none is sent).
function showFollowUpKind() {
  $("follow-up-kind").hidden = !$("follow-up").checked;
  $("follow-up-more").hidden = !$("follow-up").checked;
}
// A follow-up's title (事项: one plain line, its task's title in the lists; what the resident
// said goes in the note, sealed) and its urgency (its task's deadline), asked with the list.
// The urgencies are a task's (api/models/tasks.py URGENCIES, in common.js's words), each with
// the time its task is given; `general` unless the worker says otherwise (what the server takes
// when none is sent), and what a reset goes back to.
const URGENCY_DEFAULT = "general";
$("follow-up-urgency").innerHTML = Object.keys(TASK_TEXT[lang].urgencies)
  .map((u) => `<option value="${u}"${u === URGENCY_DEFAULT ? " selected" : ""}>${escapeHtml(urgencyOption(lang, u))}</option>`).join("");
// A visit's follow-up is a `help` task (api/services/tasks.py task_from_visit), as a problem
// report is: each urgency labelled with the hours the community gives one, as the report's
// form labels its own (report_problem.js keeps them on the phone for the offline rounds;
// `hours` null: unknown, Beijing practice shown).
function labelFollowUpUrgencies(hours) {
  for (const option of $("follow-up-urgency").options) option.textContent = urgencyOption(lang, option.value, hours?.[option.value]);
}
$("follow-up-title").placeholder = t.followUpTitleHint;
$("follow-up").addEventListener("change", () => {
  $("follow-up-note").classList.remove("invalid");
  showFollowUpKind();
});
$("visit-form").addEventListener("reset", () => setTimeout(() => {
  showFollowUpKind();
  // The next door's facts, the fold closed (a reset sets the fields to the page's defaults).
  $("register-fold").open = false;
  showRegister();
}));

// "Locate and record" waits seconds for a fix: a second tap meanwhile recorded the visit again,
// under another id (stored twice, and a household due twice a week counted as visited twice).
// One recording at a time, the button off meanwhile; the sync after it runs outside the guard
// (it may wait on the service worker).
let recording = false;
$("visit-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (recording) return;
  recording = true;
  // Switched off, the button drops the focus to the page's top: the keyboard's (a screen
  // reader's) place in the form is given back, at the door picked next, unless a field
  // refused took it meanwhile.
  const hadFocus = document.activeElement === $("record");
  $("record").disabled = true;
  let queued = false;
  try {
    queued = await saveVisit(e.target);
  } finally {
    recording = false;
    $("record").disabled = false;
    if (hadFocus && focusLost()) {
      (queued ? $("household") : $("record")).focus();
    }
  }
  if (queued) await afterQueued();
});

/** Check the form and queue its visit (a new one, located now, or the refused one being
 * edited); whether one was queued. */
async function saveVisit(target) {
  // Signed out, or another user signed in, in another tab: nothing is saved under them (nor
  // under nobody); the page opens again for whoever is signed in now.
  if (!pageUser || tokenUser(getToken()) !== pageUser) {
    location.reload();
    return false;
  }
  const form = new FormData(target);
  const fields = {
    household_id: Number(form.get("household_id")),
    outcome: form.get("outcome"),
    notes: form.get("notes") || "",
    follow_up: form.get("follow_up") === "on",
    follow_up_note: form.get("follow_up_note") || null,
  };
  // Unticked, none: an edit drops the kind the refused visit had (JSON leaves undefined out).
  fields.follow_up_kind = fields.follow_up ? (form.get("follow_up_kind") === "problem" ? "problem" : "need") : undefined;
  // A title left empty (or only spaces, zero-width ones too) is none: the server titles the
  // task 入户走访跟进 (it refuses a blank one, as a task's).
  const title = (form.get("follow_up_title") || "").trim();
  const titled = title.replace(/[\u200b\u200c\u200d\u2060\ufeff]/g, "").trim() !== "";
  fields.follow_up_title = fields.follow_up ? (titled ? title : null) : undefined;
  fields.follow_up_urgency = fields.follow_up ? (form.get("follow_up_urgency") || URGENCY_DEFAULT) : undefined;
  const problem = visitProblem(fields);
  if (problem) {
    const field = $(FIELD_IDS[problem[0]]);
    field.classList.add("invalid");
    field.focus();
    showStatus(problem[1], true);
    return false;
  }
  const register = registerChanges();
  if (register.problem) {
    $("register-fold").open = true;
    $("reg-members").classList.add("invalid");
    $("reg-members").focus();
    showStatus(register.problem, true);
    return false;
  }
  if (editing) {
    const record = editing;
    let state;
    try {
      // Stored meanwhile (a sync sent the earlier version), the edit is kept, not sent.
      // The household's facts not on the phone now (read by another user, a session ended
      // since): the fold showed none to change, and the correction the record holds stays.
      const unknown = !factsKnown(pickedHousehold()) && fields.household_id === record.visit.household_id;
      state = await requeueEdited(record, { ...record.visit, ...fields }, unknown ? record.register_changes : register.changes);
    } catch (error) {
      showStatus(t.notSaved + (error?.message || error?.name || String(error)), true);
      return false;
    }
    endEditing();
    if (state !== "overtaken") {
      // Corrected (another door, another outcome): the plan counts the visit as it now is.
      unvisitedHere(record.visit);
      if (countsInWeek(fields)) visitedHere(fields.household_id);
      if (planStops.length) renderPlan();
    }
    if (state === "overtaken") showStatus(t.overtakenCount(1), true);
    else showStatus(t.edited);
    return true;
  }
  showStatus(t.locating);
  let fix;
  try {
    fix = await locate();
  } catch (error) {
    showStatus(geoFailure(error), true);
    return false;
  }
  const visit = {
    id: crypto.randomUUID(),
    household_id: fields.household_id,
    visited_at: localIso(new Date()),
    location: {
      lon: fix.lon, lat: fix.lat, accuracy_m: fix.accuracy_m, datum: "wgs84", provider: "browser", mock: false,
    },
    outcome: fields.outcome,
    notes: fields.notes,
    follow_up: fields.follow_up,
    follow_up_note: fields.follow_up_note,
    ...(fields.follow_up ? { follow_up_kind: fields.follow_up_kind } : {}),
    ...(fields.follow_up ? { follow_up_title: fields.follow_up_title, follow_up_urgency: fields.follow_up_urgency } : {}),
  };
  if (!(await queued(visit, pageUser, register.changes))) return false;
  const saved = fix.coarse ? t.savedCoarse(fix.accuracy_m) : t.savedOffline;
  showStatus(Object.keys(register.changes).length ? `${saved} ${t.registerGoes}` : saved, fix.coarse ? "warn" : false);
  target.reset();
  // On to the next household still to visit (reset would go back to the first).
  const next = nextHousehold(visit);
  if (next !== undefined) $("household").value = String(next);
  if (planStops.length) renderPlan(); // recorded here: among the done
  return true;
}

/** Put the visit in the device's queue; false (said under the form, which keeps the worker's
 * entries) when the device refused to store it: its storage full, say. */
async function queued(visit, user, registerChanges = null) {
  try {
    await enqueue(visit, user, registerChanges);
    return true;
  } catch (error) {
    showStatus(t.notSaved + (error?.message || error?.name || String(error)), true);
    return false;
  }
}

async function afterQueued() {
  await showQueue();
  const registration = await navigator.serviceWorker?.ready.catch(() => null);
  if (registration?.sync) registration.sync.register("visits").catch(() => {});
  if (navigator.onLine) sync();
}
// Offline a sync can do nothing: said, or the worker taps "立即同步" again and again.
$("sync").addEventListener("click", () => {
  if (navigator.onLine) sync();
  else showStatus(t.syncOffline(Number($("queue-count").textContent)), "warn");
});

function urlBase64ToUint8Array(text) {
  const padded = (text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

/** What this browser is called in the device list and in the notice that it gets nothing any
 * more: its browser and system ("Chrome · 安卓"), read from its user agent. */
function deviceLabel() {
  const ua = navigator.userAgent || "";
  const browser = /MicroMessenger/.test(ua) ? "微信" : /EdgA?\//.test(ua) ? "Edge" : /Firefox\/|FxiOS/.test(ua) ? "Firefox"
    : /Chrome\/|CriOS/.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "浏览器";
  const system = /HarmonyOS/.test(ua) ? "鸿蒙" : /Android/.test(ua) ? "安卓" : /iPhone|iPad|iPod/.test(ua) ? "iOS"
    : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "Mac" : /Linux/.test(ua) ? "Linux" : "";
  return (system ? `${browser} · ${system}` : browser).slice(0, 60);
}

/** Register this browser's subscription: the server's device id is kept as this device's. A
 * device of this browser its push service dropped (`gone`, the id it had) is taken off the list
 * once the new subscription is registered in its place. */
async function registerSubscription(subscription, gone = null) {
  const body = { platform: "web", subscription: subscription.toJSON(), label: deviceLabel() };
  const device = await api("/api/v1/devices", { method: "POST", body });
  localStorage.setItem(DEVICE_KEY, String(device.id));
  if (gone && gone !== device.id) await api(`/api/v1/devices/${gone}`, { method: "DELETE" }).catch(() => {});
  return device;
}

/** Dropped by the push worker because its push service answered that it is gone (a Web Push
 * 404/410, FCM's UNREGISTERED: `retired_reason` "unregistered: ..."). Registering the same
 * subscription again sends to nothing: the browser needs a new one. */
const unregistered = (d) => Boolean(d?.retired && String(d.retired_reason || "").startsWith("unregistered"));

/** A new subscription of this browser, the one it holds (if any) let go first: subscribing
 * while it holds one answers that one again, endpoint and all. */
async function subscribeAfresh(registration, held) {
  await held?.unsubscribe().catch(() => {});
  return registration.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: urlBase64ToUint8Array(config.vapidPublicKey),
  });
}

async function enablePush() {
  try {
    if (!config.vapidPublicKey || !("PushManager" in window)) throw new Error(t.pushUnavailable);
    if ((await Notification.requestPermission()) !== "granted") throw new Error(t.pushUnavailable);
    const registration = await navigator.serviceWorker.ready;
    // This browser's device dropped as unregistered: its subscription is dead, a new one is taken.
    const gone = unregistered(listedDevices.find((d) => d.id === thisDeviceId())) ? thisDeviceId() : null;
    const subscription = gone
      ? await subscribeAfresh(registration, await registration.pushManager.getSubscription().catch(() => null))
      : await registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: urlBase64ToUint8Array(config.vapidPublicKey),
      });
    await registerSubscription(subscription, gone);
    $("push-status").textContent = t.pushOn;
  } catch (error) {
    $("push-status").textContent = error.message;
  }
  await loadDevices();
}
$("push").addEventListener("click", enablePush);
$("device-register").addEventListener("click", enablePush);

// Pushes go only to a device whose sign-in is live: a subscription this browser still holds when
// its worker signs in again (the last sign-in ran out, or was ended elsewhere) is registered
// with the new one, or the phone would stay silent until "Enable push" was pressed again.
// A subscription its push service dropped (the server's list says this browser's device was
// dropped as unregistered), or one the browser no longer holds though push was on here (this
// browser's device id kept), is replaced by a new one as the app opens: registered again, the
// dead endpoint was reactivated, failed at the next push and was dropped again, its worker told
// at each opening and getting nothing.
async function rebindPush() {
  if (globalThis.Notification?.permission !== "granted") return;
  const registration = await navigator.serviceWorker?.getRegistration().catch(() => null);
  if (!registration?.pushManager) return;
  let subscription = await registration.pushManager.getSubscription().catch(() => null);
  const here = thisDeviceId();
  if (!subscription && !here) return; // push was never turned on in this browser
  let gone = null;
  if (here) {
    const listed = (await api("/api/v1/devices").catch(() => null)) || [];
    if (!subscription || unregistered(listed.find((d) => d.id === here))) gone = here;
  }
  if (gone) subscription = await subscribeAfresh(registration, subscription);
  await registerSubscription(subscription, gone);
  $("push-status").textContent = t.pushOn;
}

// --- the devices that receive notifications (the account card) --------------------------------
// The worker's devices (`GET /devices`): this browser marked 本机 (its device id, kept when it
// registered), each with whether pushes reach it and when one last did; a device the push worker
// retired as unreachable, or whose sign-in ended, said so with what to do. Before, a worker whose
// phone got nothing believed tasks would reach them. One is removed after a confirmation.
let listedDevices = [];
const shortTime = (iso) => {
  if (!iso) return "";
  const local = new Date(Date.parse(iso) + 8 * 3600e3); // Beijing, UTC+8 without DST
  const hm = `${String(local.getUTCHours()).padStart(2, "0")}:${String(local.getUTCMinutes()).padStart(2, "0")}`;
  return lang === "zh" ? `${local.getUTCMonth() + 1}月${local.getUTCDate()}日 ${hm}` : `${local.getUTCMonth() + 1}/${local.getUTCDate()} ${hm}`;
};
const nameOf = (d) => t.deviceName(t.kinds[d.platform] || d.platform, d.label);
const thisDeviceId = () => Number(localStorage.getItem(DEVICE_KEY)) || null;

/** Why a device call failed, {why, server}: the app's sentence, the server's detail beneath;
 * offline only when the phone is (a server out of reach, online, is the sentence). */
function deviceProblem(error, sentence) {
  if (!error?.status) return { why: navigator.onLine ? sentence : t.accountOffline, server: "" };
  const body = error.body || {};
  return { why: sentence, server: body.detail || body.title || `HTTP ${error.status}` };
}
function sayDevices(id, said, error = false) {
  $(id).innerHTML = said ? explained(typeof said === "string" ? { why: said, server: "" } : said) : "";
  $(id).classList.toggle("error", error);
}

function deviceItem(d) {
  const here = d.id === thisDeviceId();
  const state = unregistered(d) ? t.deviceUnregistered(shortTime(d.retired_at))
    : d.retired ? t.deviceRetired(shortTime(d.failing_since), d.consecutive_failures)
    : !d.signed_in ? t.deviceSignedOut : t.deviceActive(shortTime(d.last_success_at));
  const cls = d.retired ? "retired" : d.active ? "" : "off";
  return `<li class="device ${cls}" data-id="${d.id}"><b>${escapeHtml(nameOf(d))}</b>${here
    ? `<span class="this-one">${escapeHtml(t.thisOne)}</span>` : ""}
    <span class="device-state">${escapeHtml(state)}</span>
    <small class="muted">${escapeHtml(t.deviceRegistered(shortTime(d.created_at)))}</small>
    <div class="actions"><button type="button" class="remove" data-device="${d.id}">${escapeHtml(t.remove)}</button></div></li>`;
}

/** This browser's own state: can it get pushes at all, has the worker refused notifications, is
 * it registered, retired? With the button to register it where that helps. */
function showThisDevice() {
  const supported = Boolean(config.vapidPublicKey) && "PushManager" in window && "Notification" in window;
  const mine = listedDevices.find((d) => d.id === thisDeviceId());
  let said = t.hereNotRegistered, level = "warn", button = t.registerHere;
  if (!supported) [said, button] = [t.hereUnsupported, null];
  else if (Notification.permission === "denied") [said, level, button] = [t.hereDenied, "error", null];
  else if (unregistered(mine)) [said, level, button] = [t.hereUnregistered, "error", t.registerAgain];
  else if (mine?.retired) [said, level, button] = [t.hereRetired, "error", t.registerAgain];
  else if (mine && !mine.active) [said, button] = [t.hereSignedOut, t.registerAgain];
  else if (mine) [said, level, button] = [t.hereActive, "", null];
  $("this-device").textContent = said;
  $("this-device").className = level;
  $("device-register").hidden = !button;
  if (button) $("device-register").textContent = button;
}

async function loadDevices() {
  if (!navigator.onLine) {
    listedDevices = [];
    $("devices").innerHTML = "";
    sayDevices("devices-status", t.devicesOffline);
    showThisDevice();
    return;
  }
  try {
    listedDevices = (await api("/api/v1/devices")) || [];
  } catch (error) {
    sayDevices("devices-status", deviceProblem(error, t.devicesFailed), true);
    return;
  }
  // This one first, then the rest as registered.
  const here = thisDeviceId();
  const shown = [...listedDevices].sort((a, b) => (b.id === here) - (a.id === here) || a.id - b.id);
  $("devices").innerHTML = shown.map(deviceItem).join("");
  const retired = listedDevices.filter((d) => d.retired).length;
  sayDevices("devices-status", !listedDevices.length ? t.devicesNone : retired ? t.devicesRetiredCount(retired) : "", retired > 0);
  showThisDevice();
}

/** The card as nobody's: at each start and when the sign-in ends, so that the next worker to
 * sign in on this phone never sees the last one's devices or quiet hours (kept until the list
 * was read again, and for good when that read failed). */
function resetDevices() {
  listedDevices = [];
  $("devices").innerHTML = "";
  sayDevices("devices-status", "");
  $("quiet-start").value = "";
  $("quiet-end").value = "";
  sayDevices("quiet-status", "");
  $("push-status").textContent = "";
}

$("devices").addEventListener("click", async (e) => {
  const button = e.target.closest("button.remove");
  if (!button) return;
  const device = listedDevices.find((d) => d.id === Number(button.dataset.device));
  if (!device) return;
  const here = device.id === thisDeviceId();
  if (!confirm(here ? t.removeThisConfirm : t.removeConfirm(nameOf(device)))) return;
  button.disabled = true;
  try {
    await api(`/api/v1/devices/${device.id}`, { method: "DELETE" });
  } catch (error) {
    button.disabled = false;
    const sentence = error?.status === 404 ? t.removeGone : t.removeFailed;
    sayDevices("devices-status", deviceProblem(error, sentence), true);
    if (error?.status === 404) await loadDevices().then(() => sayDevices("devices-status", deviceProblem(error, sentence), true));
    return;
  }
  if (here) {
    // Or the next opening of the app would register the subscription again (`rebindPush`).
    const registration = await navigator.serviceWorker?.getRegistration().catch(() => null);
    const subscription = await registration?.pushManager?.getSubscription().catch(() => null);
    await subscription?.unsubscribe().catch(() => {});
    localStorage.removeItem(DEVICE_KEY);
    $("push-status").textContent = "";
  }
  // Gone from the list now: read again, the list may fail to come, and it stayed listed.
  listedDevices = listedDevices.filter((d) => d.id !== device.id);
  button.closest("li.device")?.remove();
  showThisDevice();
  await loadDevices();
  sayDevices("devices-status", t.removed(nameOf(device)));
});

// Quiet hours (`/devices/quiet-hours`, Beijing time): ordinary pushes wait until they end.
const hhmm = (value) => (value ? String(value).slice(0, 5) : "");
async function loadQuietHours() {
  if (!navigator.onLine) return;
  try {
    const quiet = await api("/api/v1/devices/quiet-hours");
    $("quiet-start").value = hhmm(quiet.quiet_start);
    $("quiet-end").value = hhmm(quiet.quiet_end);
    sayDevices("quiet-status", quiet.quiet_start ? "" : t.quietNone);
  } catch (error) {
    sayDevices("quiet-status", deviceProblem(error, t.quietFailed), true);
  }
}
async function saveQuietHours(start, end) {
  if (!navigator.onLine) {
    sayDevices("quiet-status", t.accountOffline, true);
    return;
  }
  try {
    await api("/api/v1/devices/quiet-hours", {
      method: "PUT", body: { quiet_start: start, quiet_end: end, timezone: "Asia/Shanghai" },
    });
  } catch (error) {
    sayDevices("quiet-status", deviceProblem(error, error?.status === 422 && start === end ? t.quietSame : t.quietFailed), true);
    return;
  }
  $("quiet-start").value = start || "";
  $("quiet-end").value = end || "";
  sayDevices("quiet-status", start ? t.quietSaved(start, end) : t.quietCleared);
}
$("quiet-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const start = $("quiet-start").value, end = $("quiet-end").value;
  if (!start || !end) {
    sayDevices("quiet-status", t.quietBoth, true);
    return;
  }
  saveQuietHours(start, end);
});
$("quiet-clear").addEventListener("click", () => saveQuietHours(null, null));

// --- the inbox (消息) -------------------------------------------------------------------------
// Every notice the server sends lands in the inbox (`GET /notifications`); push only mirrors it,
// and in mainland China FCM reaches few phones. The app never read it: a worker whose phone got
// no push never saw a leave decision, a swap request or a deadline warning. The header shows the
// unread count (the total of `/notifications?unread=true`, whose notices also mark read here
// those read on another device); the card lists the notices newest first, a page at a time
// ("更多", the API's paging). It is read again at start, when the page is shown again,
// when the network comes back, when the service worker relays a push ("inbox-changed") and every
// few minutes while open (`INBOX_POLL_MS`), with `cursor` = the `X-Inbox-Cursor` of the last
// answer read: what arrived since (and a few repeats, merged by id; docs/tasks-and-push.md,
// "Polling the inbox"). "全部标为已读" sends that cursor: a notice that arrived after it stays
// unread. Tapping a notice marks it read and opens what it is about where the app has it;
// tapped offline, it is read on the phone at once and acknowledged once online (the ids kept in
// IndexedDB, `INBOX_ACKS_KEY`, sent before the next read of the inbox).
// The app is offline-first: the newest notices read (`INBOX_KEPT`) and the unread count are kept
// in IndexedDB (`INBOX_KEY`), tagged with their worker, and shown when the app opens offline, said
// to be the last received. A task notice carries a task's title, which may name a resident: the
// copy is forgotten at every sign-out (`forgetSignIn`), when the session ends, and at the start
// of anyone else's app; a start online reads the first page afresh, as before.
const INBOX_PAGE = 20;
const INBOX_POLL_PAGE = 50;
// A poll reads two pages at most (a few repeats among them, the API's): more arrived since than
// that, the list is read afresh, its first page, the rest by "更多" (the app holds what the
// worker reads, not every notice of a long absence).
const INBOX_POLL_PAGES = 2;
const INBOX_UNREAD_PAGE = 100; // the unread notices read with each poll (their count is the badge)
// Three minutes: a push relayed, the page shown again and the network back read it at once; the
// timer is for a phone left open on the app without push (most in China), where a notice waits
// at most this long. A deadline warning comes hours ahead, and two light reads a phone every
// three minutes (an indexed count, and a page of what arrived since) cost the server little.
const INBOX_POLL_MS = 3 * 60_000;
const INBOX_KEPT = 5 * INBOX_PAGE; // the newest notices kept on the phone for offline
// `kept`: the notices shown are those kept on the phone, none read from the server since.
let inbox = { user: null, items: [], cursor: null, nextPage: null, unread: 0, loaded: false, kept: false };
let inboxChain = Promise.resolve();
let inboxRefreshQueued = false;

function resetInbox() {
  inbox = { user: tokenUser(getToken()), items: [], cursor: null, nextPage: null, unread: 0, loaded: false, kept: false };
  sayInbox("");
  renderInbox();
}

/** One inbox step at a time (a poll, "更多", an acknowledgement): each reads and moves the
 * cursor the one before left. A step never rejects: its failure is said on the card. */
function inboxStep(work) {
  const run = inboxChain.then(async () => {
    const user = tokenUser(getToken());
    try {
      await work();
    } catch (error) {
      // The notices shown are those kept on the phone (none read since): said so.
      const failed = inbox.kept && inbox.items.length ? t.inboxFailedKept : t.inboxFailed;
      if (error?.status !== 401) sayInbox(inboxProblem(error, failed), true);
    }
    await keepInbox(user);
  });
  inboxChain = run;
  return run;
}

/** Why an inbox call failed, {why, server}: offline said so, else the app's sentence with the
 * server's detail beneath. */
function inboxProblem(error, sentence) {
  if (!error?.status) return { why: navigator.onLine ? sentence : t.inboxNeedsNet, server: "" };
  const body = error.body || {};
  return { why: sentence, server: body.detail || body.title || `HTTP ${error.status}` };
}
function sayInbox(said, error = false) {
  $("inbox-status").innerHTML = said ? explained(typeof said === "string" ? { why: said, server: "" } : said) : "";
  $("inbox-status").classList.toggle("error", error === true);
  $("inbox-status").classList.toggle("warn", error === "warn");
}

/** Keep what the list now shows of the server's (its newest `INBOX_KEPT` notices) for offline,
 * while `user` is still the one signed in and the inbox was read for them. */
async function keepInbox(user) {
  if (!inbox.loaded || !sameUser(user)) return;
  const kept = { user, at: Date.now(), unread: inbox.unread, items: inbox.items.slice(0, INBOX_KEPT) };
  try {
    await setMeta(INBOX_KEY, kept);
  } catch {
    await forgetInbox(); // no room: better no copy than an old one said to be the last
  }
}

/** Show the notices kept for the worker signed in (a start offline shows them, said so); the
 * copy of anyone else is forgotten. */
async function restoreInbox() {
  const user = tokenUser(getToken());
  let kept;
  try {
    kept = await getMeta(INBOX_KEY);
  } catch {
    return; // storage refused: nothing kept
  }
  if (!kept) return;
  if (!user || kept.user !== user) {
    await forgetInbox();
    return;
  }
  const readHere = new Set(await readOffline(user)); // read offline since the copy was kept
  if (!sameUser(user) || inbox.loaded || inbox.items.length) return;
  inbox.items = Array.isArray(kept.items) ? kept.items : [];
  inbox.unread = Number(kept.unread) || 0;
  for (const n of inbox.items) {
    if (readHere.has(n.id) && !n.read_at) {
      n.read_at = new Date().toISOString();
      inbox.unread = Math.max(0, inbox.unread - 1);
    }
  }
  inbox.kept = true; // until the list is read afresh
  renderInbox();
}

const newestFirst = (a, b) => String(b.created_at).localeCompare(String(a.created_at)) || b.id - a.id;
function mergeNotices(rows) {
  const byId = new Map(inbox.items.map((n) => [n.id, n]));
  for (const row of rows) byId.set(row.id, row);
  inbox.items = [...byId.values()].sort(newestFirst);
}

function noticeItem(n) {
  const kind = t.noticeKinds[n.kind];
  const unread = !n.read_at;
  return `<li class="notice${unread ? " unread" : ""}" data-id="${n.id}"><button type="button" class="notice-open"><span class="notice-head">${
    kind ? `<span class="notice-kind">${escapeHtml(kind)}</span>` : ""}<b class="notice-title">${escapeHtml(n.title)}</b>${
    unread ? `<span class="unread-mark">${escapeHtml(t.unreadMark)}</span>` : ""}<span class="notice-time">${escapeHtml(shortTime(n.created_at))}</span></span>${
    n.body ? `<span class="notice-body">${escapeHtml(n.body)}</span>` : ""}</button></li>`;
}

function renderInbox() {
  const none = navigator.onLine || inbox.loaded ? t.inboxNone : t.inboxOfflineNone;
  $("inbox-list").innerHTML = inbox.items.map(noticeItem).join("") || `<li class="muted">${escapeHtml(none)}</li>`;
  $("inbox-more").hidden = !inbox.nextPage;
  $("inbox-ack-all").hidden = !(inbox.unread > 0 || inbox.items.some((n) => !n.read_at));
  $("inbox-badge").hidden = !(inbox.unread > 0);
  $("inbox-badge").textContent = inbox.unread > 99 ? "99+" : String(inbox.unread || "");
  $("inbox-link").hidden = !getToken() || $("home").hidden;
}

/** The user the inbox is read for is still the one signed in (a sign-out, another sign-in
 * meanwhile: the answer is dropped). */
const sameUser = (user) => user === tokenUser(getToken()) && inbox.user === user;

/** Every notice committed since `cursor`, the pages of that answer up to `INBOX_POLL_PAGES`:
 * {rows, cursor, complete} (the cursor of the last page read, as the API asks; complete: no page
 * was left). A worker back after a long absence may have more than a poll reads: those merged,
 * the older ones left would be a hole in the list (newer than those held, older than those
 * read) that neither a poll nor "更多" reads; the caller reads the list afresh instead. */
async function inboxSince(cursor) {
  const rows = [];
  let page = 1;
  let next = cursor;
  for (let n = 0; n < INBOX_POLL_PAGES && page; n++) {
    const answer = await apiPage(`/api/v1/notifications?cursor=${encodeURIComponent(cursor)}`, { page, pageSize: INBOX_POLL_PAGE });
    rows.push(...answer.items);
    next = answer.headers.get("X-Inbox-Cursor") || next;
    page = answer.pagination?.next_page > page ? answer.pagination.next_page : null;
  }
  return { rows, cursor: next, complete: !page };
}

/** The notices of `ids` (those the list showed unread) that the answer since `cursor` holds
 * past the pages a poll reads, no other kept (20 pages at most): after "全部标为已读" with a
 * flood arrived since, those a transaction running elsewhere held behind the cursor are there,
 * older than the flood, and still unread. */
async function shownBeyond(cursor, ids) {
  const found = [];
  let page = INBOX_POLL_PAGES + 1;
  for (let n = 0; n < 20 && page; n++) {
    const answer = await apiPage(`/api/v1/notifications?cursor=${encodeURIComponent(cursor)}`, { page, pageSize: INBOX_POLL_PAGE });
    found.push(...answer.items.filter((row) => ids.has(row.id)));
    page = answer.pagination?.next_page > page ? answer.pagination.next_page : null;
  }
  return found;
}

/** The list afresh: its first page, "更多" the next. False: another user now. */
async function readFirstPage(user) {
  const first = await apiPage("/api/v1/notifications", { page: 1, pageSize: INBOX_PAGE });
  if (!sameUser(user)) return false;
  inbox.items = [...first.items].sort(newestFirst);
  inbox.kept = false;
  inbox.cursor = first.headers.get("X-Inbox-Cursor");
  inbox.nextPage = first.pagination?.next_page || null;
  return true;
}

async function readInbox() {
  const user = tokenUser(getToken());
  if (!user || $("home").hidden) return;
  if (inbox.user !== user) resetInbox();
  if (!navigator.onLine) {
    sayInbox(inbox.items.length ? t.inboxOffline : t.inboxOfflineNone, "warn");
    renderInbox();
    return;
  }
  await sendInboxAcks(user); // before reading: the notices read offline are read on the server too
  if (!sameUser(user)) return;
  if (inbox.cursor !== null) {
    const since = await inboxSince(inbox.cursor);
    if (!sameUser(user)) return;
    if (since.complete) {
      mergeNotices(since.rows);
      inbox.cursor = since.cursor;
    } else {
      inbox.cursor = null; // more arrived than a poll reads: the list afresh, the rest by "更多"
    }
  }
  if (inbox.cursor === null && !(await readFirstPage(user))) return;
  if (!(await readUnread(user))) return;
  inbox.loaded = true;
  sayInbox("");
  renderInbox();
}

/** The unread count, with the unread notices themselves (newest first, a page): a notice held
 * here unread that the server no longer lists unread was read elsewhere (the worker's other
 * phone, the office's browser) and is marked read here too. A poll answers only what arrived
 * since its cursor: the notice stayed 未读 here for good, under a badge no longer counting it.
 * One shown read here that the server lists unread (marked all read, a transaction running
 * elsewhere held it behind the cursor) is shown unread again. Beyond the page, those older than
 * its last are left as they are. False: another user now. */
async function readUnread(user) {
  const answer = await apiPage("/api/v1/notifications?unread=true", { page: 1, pageSize: INBOX_UNREAD_PAGE });
  if (!sameUser(user)) return false;
  const unread = answer.items;
  inbox.unread = answer.pagination?.total ?? unread.length;
  const still = new Set(unread.map((n) => n.id));
  const oldest = unread.length < INBOX_UNREAD_PAGE || !unread.length ? null : unread[unread.length - 1];
  const covered = (n) => !oldest || newestFirst(n, oldest) <= 0; // listed on that page, if unread
  const at = new Date().toISOString();
  inbox.items = inbox.items.map((n) => {
    if (!covered(n)) return n;
    if (still.has(n.id)) return n.read_at ? { ...n, read_at: null } : n; // said read here too soon
    return n.read_at ? n : { ...n, read_at: at };
  });
  return true;
}

/** Read the inbox again (one read waiting behind the one on its way is enough). */
function refreshInbox() {
  if (inboxRefreshQueued) return inboxChain;
  inboxRefreshQueued = true;
  return inboxStep(() => {
    inboxRefreshQueued = false;
    return readInbox();
  });
}

// "更多": the next page of the whole list (new notices since pushed it down: repeats, merged).
$("inbox-more").addEventListener("click", () => inboxStep(async () => {
  const user = tokenUser(getToken());
  if (!inbox.nextPage || !sameUser(user)) return;
  if (!navigator.onLine) {
    sayInbox(t.inboxOffline, "warn");
    return;
  }
  $("inbox-more").disabled = true;
  try {
    const answer = await apiPage("/api/v1/notifications", { page: inbox.nextPage, pageSize: INBOX_PAGE });
    if (!sameUser(user)) return;
    mergeNotices(answer.items);
    // Paging on, the API's rule: keep the last page's cursor (it lets through what arrived meanwhile).
    inbox.cursor = answer.headers.get("X-Inbox-Cursor") || inbox.cursor;
    inbox.nextPage = answer.pagination?.next_page > inbox.nextPage ? answer.pagination.next_page : null;
  } finally {
    $("inbox-more").disabled = false;
    renderInbox();
  }
}));

// "全部标为已读" with the cursor of the last answer read: what it showed is marked, a notice that
// arrived since stays unread. Read again from that cursor: the notices answered come with their
// state (one that arrived meanwhile, unread); every other one held here was marked. A few the
// list showed may come back unread (a transaction running elsewhere in the database held the
// cursor back, as the API warns): those, and only those the worker had in front of them, are
// acknowledged one by one.
$("inbox-ack-all").addEventListener("click", () => inboxStep(async () => {
  const user = tokenUser(getToken());
  if (!sameUser(user)) return;
  if (!navigator.onLine) {
    sayInbox(t.inboxNeedsNet, "warn");
    return;
  }
  // No answer read yet (the notices shown are those kept on the phone, the read since failed):
  // nothing is known to have been shown, so nothing is marked.
  if (inbox.cursor === null) {
    sayInbox(t.inboxAckFailed, true);
    return;
  }
  const cursor = inbox.cursor;
  const shownUnread = new Set(inbox.items.filter((n) => !n.read_at).map((n) => n.id));
  $("inbox-ack-all").disabled = true;
  let acknowledged;
  try {
    ({ acknowledged } = await api("/api/v1/notifications/ack-all", { method: "POST", body: { cursor } }));
  } catch (error) {
    if (error?.status !== 401) sayInbox(inboxProblem(error, t.inboxAckFailed), true);
    return;
  } finally {
    $("inbox-ack-all").disabled = false;
  }
  // Marked on the server from here: a read after that fails does not make it a failure.
  try {
    const since = await inboxSince(cursor);
    if (!sameUser(user)) return;
    const beyond = since.complete || !shownUnread.size ? [] : await shownBeyond(cursor, shownUnread);
    const held = [...since.rows, ...beyond].filter((n) => !n.read_at && shownUnread.has(n.id));
    for (let i = 0; i < held.length; i += 5) {
      const acked = await Promise.all(held.slice(i, i + 5).map((n) => api(`/api/v1/notifications/${n.id}/ack`, { method: "POST" })
        .catch((error) => (error?.status === 404 ? null : Promise.reject(error)))));
      for (const row of acked.filter(Boolean)) {
        const at = since.rows.findIndex((n) => n.id === row.id);
        if (at >= 0) since.rows[at] = row;
      }
      acknowledged += acked.filter(Boolean).length;
    }
    if (!sameUser(user)) return;
    const answered = new Set(since.rows.map((n) => n.id));
    const at = new Date().toISOString();
    inbox.items = inbox.items.map((n) => (answered.has(n.id) || n.read_at ? n : { ...n, read_at: at }));
    if (since.complete) {
      mergeNotices(since.rows);
      inbox.cursor = since.cursor;
    } else if (!(await readFirstPage(user))) return; // more arrived than a poll reads
    if (!(await readUnread(user))) return;
  } catch (error) {
    if (error?.status === 401 || !sameUser(user)) return;
    // The server marked none of those shown unread (a transaction running elsewhere held the
    // cursor behind them all), and they could not be acknowledged one by one: not marked, said
    // so (it said 没有未读消息。 and showed them read, the server holding them unread).
    if (!acknowledged && shownUnread.size) {
      sayInbox(inboxProblem(error, t.inboxAckFailed), true);
      return;
    }
    // Those shown are said read, as the server has them but for a few a transaction running
    // elsewhere held behind the cursor: the next read (`readUnread`) shows those unread again.
    const at = new Date().toISOString();
    inbox.items = inbox.items.map((n) => (shownUnread.has(n.id) && !n.read_at ? { ...n, read_at: at } : n));
    inbox.unread = Math.max(0, inbox.unread - acknowledged);
  }
  renderInbox();
  sayInbox(t.inboxAckedAll(acknowledged));
}));

$("inbox-list").addEventListener("click", (e) => {
  const item = e.target.closest("li.notice");
  if (item) inboxStep(() => openNotice(Number(item.dataset.id)));
});

/** The notices read offline by `user`, to acknowledge once online (ids, oldest first). */
async function readOffline(user) {
  const kept = await getMeta(INBOX_ACKS_KEY).catch(() => null);
  return kept?.user === user ? kept.ids : [];
}

/** Keep notice `id` to acknowledge once online; whether the phone kept it. */
async function ackLater(user, id) {
  const ids = await readOffline(user);
  return setMeta(INBOX_ACKS_KEY, { user, ids: [...new Set([...ids, id])] }).then(() => true, () => false);
}

/** Acknowledge the notices read offline, one by one: those done (or gone from the server)
 * leave the phone; the first that gets no answer ends it (the next would get none either). */
async function sendInboxAcks(user) {
  const left = [...(await readOffline(user))];
  if (!left.length) return;
  while (left.length) {
    try {
      await api(`/api/v1/notifications/${left[0]}/ack`, { method: "POST" });
    } catch (error) {
      if (noAnswer(error)) break;
    }
    left.shift();
  }
  if (sameUser(user)) await setMeta(INBOX_ACKS_KEY, { user, ids: left }).catch(() => {});
}

/** Mark the notice read (online; offline, on the phone until online) and open what it is about. */
async function openNotice(id) {
  const user = tokenUser(getToken());
  const notice = inbox.items.find((n) => n.id === id);
  if (!notice || !sameUser(user)) return;
  sayInbox("");
  if (!notice.read_at) {
    if (!navigator.onLine) {
      // Read at the door: read here at once, the server told once online (`sendInboxAcks`).
      if (await ackLater(user, id)) {
        notice.read_at = new Date().toISOString();
        inbox.unread = Math.max(0, inbox.unread - 1);
        renderInbox();
        sayInbox(t.inboxReadOffline, "warn");
      } else {
        sayInbox(t.inboxNeedsNet, "warn");
      }
    } else {
      try {
        const row = await api(`/api/v1/notifications/${id}/ack`, { method: "POST" });
        if (!sameUser(user)) return;
        mergeNotices([row]);
        // Read again, not one taken off: the notice may have been read elsewhere already (the
        // badge then counted it no more) and others may have arrived since the last poll.
        await readInbox().catch(() => { inbox.unread = Math.max(0, inbox.unread - 1); });
        renderInbox();
      } catch (error) {
        if (error?.status === 401) return;
        if (error?.status === 404) { // gone from the server (and from this list)
          inbox.items = inbox.items.filter((n) => n.id !== id);
          // Nor counted unread any more: the count read again (it went on counting it).
          const counted = await readUnread(user).catch(() => null);
          if (counted === false) return; // another user now
          if (counted === null) inbox.unread = Math.max(0, inbox.unread - 1);
          renderInbox();
          sayInbox(inboxProblem(error, t.inboxGone), true);
          return;
        }
        sayInbox(inboxProblem(error, t.inboxAckFailed), true);
      }
    }
  }
  await openSubject(notice);
}

let focused = null;
function focusOn(el) {
  focused?.classList.remove("focus");
  focused = el;
  el.classList.add("focus");
  el.scrollIntoView({ block: "center" });
  setTimeout(() => { if (focused === el) { el.classList.remove("focus"); focused = null; } }, 8000);
}

/** The element `find` answers, after reading its list again (`reload`, online) when it is not there. */
async function shown(find, reload) {
  const el = find();
  if (el || !navigator.onLine) return el;
  await reload();
  return find();
}

/** Open what a notice is about where the app shows it: a task's card (mine, else my grids') and
 * its page (offline, as kept on the phone), a leave in the leave card, the week for a roster or a swap, a device in the account card,
 * a household found moved out on the register's page (/register). */
async function openSubject(notice) {
  const data = notice.data || {};
  const kind = notice.kind || "";
  const byId = (selector, id) => (id ? document.querySelector(`${selector}[data-id="${CSS.escape(String(id))}"]`) : null);
  if (kind.startsWith("task_")) {
    const find = () => byId("#tasks li.task", data.task_id) || byId("#grid-task-list li.grid-task", data.task_id);
    const el = data.task_id ? await shown(find, () => Promise.all([loadTasks(), loadGridTasks()])) : null;
    if (el) focusOn(el);
    // Online, the task's own page opens over it: what the notice is about, even a task no
    // longer in the lists (resolved, say; the page says so of one the caller cannot read).
    // Offline, its page as kept on the phone (the worker's open tasks: web/src/task_pages.js).
    const id = Number(data.task_id);
    if (data.task_id && (navigator.onLine || (await keptPage(id)))) detail.open(id);
    // Offline, the lists are copies saved earlier (the task may be newer): nothing says it left.
    else if (data.task_id && !el) sayInbox(t.inboxTaskNotKept, "warn");
  } else if (kind.startsWith("leave_")) {
    const el = await shown(() => byId("#leave li.leave", data.leave_id), () => loadLeave());
    if (!el && data.leave_id && navigator.onLine) sayInbox(t.inboxLeaveGone, "warn");
    if (!$("leave").hidden) focusOn(el || $("leave"));
  } else if (kind.startsWith("roster_") || kind.startsWith("shift_swap_")) {
    if (navigator.onLine) await loadShifts();
    focusOn($("week-card"));
  } else if (kind === "device_retired") {
    const el = await shown(() => byId("#devices li.device", data.device_id), () => loadDevices());
    if (!el && data.device_id && navigator.onLine) sayInbox(t.inboxDeviceGone, "warn");
    focusOn(el || $("devices-card"));
  } else if (kind === "household_moved_out" && data.household_id) {
    // The leader takes it out of the register (or not) on the register's page, the household's
    // removal asked at once there.
    if (navigator.onLine) location.assign(`/register?household=${encodeURIComponent(data.household_id)}`);
    else sayInbox(t.inboxRegisterOnline, "warn");
  } else if (kind === "device_moved") {
    // The device went to another account: it is not on this worker's list any more.
    if (navigator.onLine) await loadDevices();
    focusOn($("devices-card"));
  }
}

// A push tapped opens the notice it mirrors as a tap here does (`notificationclick` in sw.js):
// the service worker tells the open app (`{notice}`), or opens it at `/app?notice=ID`. A notice
// older than the list's first page is read by its acknowledgement.
function openNotified(id) {
  if (!id || !getToken() || $("home").hidden) return Promise.resolve();
  const listed = () => inbox.items.some((n) => n.id === id);
  return inboxStep(async () => {
    if (!listed()) await readInbox();
    if (!listed() && navigator.onLine) {
      try {
        mergeNotices([await api(`/api/v1/notifications/${id}/ack`, { method: "POST" })]);
      } catch (error) {
        if (error?.status !== 404) throw error;
        sayInbox(inboxProblem(error, t.inboxGone), true); // gone, or not this worker's
        return;
      }
      await readUnread(tokenUser(getToken())).catch(() => {});
      renderInbox();
    }
    await openNotice(id);
  });
}

/** The notice the app was opened at (`?notice=ID`, a push tapped with the app closed), taken
 * off the address: a reload, or the language switched, opens the app as it is. */
function noticeOpenedAt() {
  const url = new URL(location.href);
  const id = Number(url.searchParams.get("notice")) || null;
  if (url.searchParams.has("notice")) {
    url.searchParams.delete("notice");
    history.replaceState(history.state, "", url);
  }
  return id;
}

$("inbox-link").addEventListener("click", (e) => {
  e.preventDefault();
  $("inbox").scrollIntoView({ block: "start" });
  refreshInbox();
});
setInterval(() => { if (document.visibilityState === "visible") refreshInbox(); }, INBOX_POLL_MS);

// --- leave ------------------------------------------------------------------------------------
// Who requests leave for themself (api/services/rosters.py SHIFT_ROLES) and who decides their
// community's requests, their own aside (the roles api/scope.py `edits_roster` lets decide):
// tests/api/test_web.py holds both to the API. Leave is asked and decided online only: a request
// is not queued (a worker must know at once whether it went, and a decision is the leader's).
const LEAVE_REQUESTERS = ["worker", "grid_leader"];
const LEAVE_DECIDERS = ["grid_leader", "community_admin"];
const LEAVE_SHOWN = 20; // my leave, newest first: the rest is history
const leaveDayCount = (l) => Math.round((Date.parse(l.end_date) - Date.parse(l.start_date)) / 86400000) + 1;
const leaveDays = (l) => t.leaveDays(l.start_date, l.end_date, leaveDayCount(l));
const colon = lang === "zh" ? "：" : ": ";

/** Why a leave call failed, {why, server}: in Chinese the app's sentence for the call and
 * status (with the fields a 422 names) and the server's `detail` small beneath; in English,
 * or for a refusal the table does not know, the server's words. */
function leaveProblem(error, action) {
  if (!error?.status) return { why: t.leaveNetwork, server: "" };
  const body = error.body || {};
  const server = body.detail || body.title || `HTTP ${error.status}`;
  const fields = Object.keys(body.errors?.json || {}).map((f) => t.leaveFields[f]).filter(Boolean);
  const check = error.status === 422 && fields.length ? t.leaveCheck(fields) : "";
  const sentence = t.leaveRefused[action]?.[error.status];
  if (sentence) return { why: sentence + check, server };
  return lang === "zh" ? { why: t.leaveFailed + check, server } : { why: server + check, server: "" };
}

function sayLeave(id, said, error = false) {
  $(id).innerHTML = said ? explained(typeof said === "string" ? { why: said, server: "" } : said) : "";
  $(id).classList.toggle("error", error);
  // The button pressed was switched off, or its request left the list: the focus it had fell
  // to the page's top. The keyboard's (a screen reader's) place is what came of it.
  if (said && focusLost()) $(id).focus();
}

function leaveWhen(l) {
  const at = (iso) => localTime(new Date(iso));
  return [
    t.leaveAsked(at(l.created_at)),
    l.decided_at && t.leaveDecidedAt(at(l.decided_at)),
    l.cancelled_at && t.leaveCancelledAt(at(l.cancelled_at)),
    l.approved_end_date && t.leaveShortened(l.approved_end_date),
  ].filter(Boolean).join(" · ");
}

/** My leave: a request is withdrawn, approved leave cancelled until its first day has passed
 * (api/services/rosters.py `cancel_leave`), and leave under way ended early by a worker back
 * at work: its last day yesterday (`end_leave`; the days taken stay a record). */
function myLeaveItem(l) {
  const today = todayLocal();
  const cancellable = l.status === "requested" || (l.status === "approved" && l.start_date >= today);
  const underWay = l.status === "approved" && l.start_date < today && today <= l.end_date;
  const label = l.status === "requested" ? t.leaveWithdraw : underWay ? t.leaveBack : t.leaveCancel;
  return `<li class="leave" data-id="${l.id}" data-status="${escapeHtml(l.status)}"><b>${escapeHtml(leaveDays(l))}</b>
    <span class="leave-state ${escapeHtml(l.status)}">${escapeHtml(t.leaveStatuses[l.status] || l.status)}</span>
    ${l.reason ? `<div class="leave-reason">${escapeHtml(t.leaveReason)}${colon}${escapeHtml(l.reason)}</div>` : ""}
    ${l.decision_note ? `<div class="leave-note">${escapeHtml(t.leaveNote)}${colon}${escapeHtml(l.decision_note)}</div>` : ""}
    <div class="muted">${escapeHtml(leaveWhen(l))}</div>
    ${cancellable || underWay ? `<div class="actions"><button type="button" class="${underWay ? "end" : "cancel"}" data-leave="${l.id}">${escapeHtml(label)}</button></div>` : ""}</li>`;
}

function pendingLeaveItem(l) {
  return `<li class="leave" data-id="${l.id}"><b>${escapeHtml(l.worker_name || `#${l.worker_id}`)}</b>
    ${escapeHtml(leaveDays(l))}
    ${l.reason ? `<div class="leave-reason">${escapeHtml(t.leaveReason)}${colon}${escapeHtml(l.reason)}</div>` : ""}
    <div class="muted">${escapeHtml(leaveWhen(l))}</div>
    <div class="actions"><button type="button" data-leave="${l.id}" data-decision="approve">${escapeHtml(t.leaveApprove)}</button><button
      type="button" class="reject" data-leave="${l.id}" data-decision="reject">${escapeHtml(t.leaveReject)}</button></div></li>`;
}

/** A worker's approved leave, for a leader or admin of their community: leave under way is
 * ended early, its last day yesterday (`end_leave`: the days taken stay a record), leave not
 * begun cancelled (`cancel_leave`), as the worker does their own. */
function currentLeaveItem(l) {
  const underWay = l.start_date < todayLocal();
  return `<li class="leave" data-id="${l.id}" data-status="approved"><b>${escapeHtml(l.worker_name || `#${l.worker_id}`)}</b>
    <span class="leave-days">${escapeHtml(leaveDays(l))}</span>
    <span class="leave-state ${underWay ? "under-way" : "to-come"}">${escapeHtml(underWay ? t.leaveUnderWay : t.leaveToCome)}</span>
    ${l.reason ? `<div class="leave-reason">${escapeHtml(t.leaveReason)}${colon}${escapeHtml(l.reason)}</div>` : ""}
    <div class="muted">${escapeHtml(leaveWhen(l))}</div>
    <div class="actions"><button type="button" class="${underWay ? "end" : "cancel"}" data-leave="${l.id}">${escapeHtml(underWay ? t.leaveEndEarly : t.leaveCancel)}</button></div></li>`;
}

let myLeave = [];
let pendingLeave = [];
let currentLeave = [];

async function showMyLeave(mine = readMyLeave()) {
  try {
    myLeave = [...await mine]
      .sort((a, b) => b.start_date.localeCompare(a.start_date) || b.id - a.id);
  } catch {
    $("leave-list").innerHTML = `<li class="muted">${escapeHtml(navigator.onLine ? t.leaveUnavailable : t.leaveOffline)}</li>`;
    return;
  }
  const older = myLeave.length - LEAVE_SHOWN;
  $("leave-list").innerHTML = myLeave.length
    ? myLeave.slice(0, LEAVE_SHOWN).map(myLeaveItem).join("") + (older > 0 ? `<li class="muted">${escapeHtml(t.leaveOlder(older))}</li>` : "")
    : `<li class="muted">${escapeHtml(t.leaveNone)}</li>`;
}

/** The requests the caller may decide: the API lists their community's (api/scope.py
 * `leaves`), their own among them, which someone else decides. */
async function showPendingLeave() {
  const me = Number(tokenUser(getToken()));
  try {
    pendingLeave = (await api("/api/v1/leaves?status=requested")).filter((l) => l.worker_id !== me);
  } catch {
    $("leave-pending").innerHTML = `<li class="muted">${escapeHtml(navigator.onLine ? t.leaveUnavailable : t.leaveOffline)}</li>`;
    return;
  }
  $("leave-pending").innerHTML = pendingLeave.length ? pendingLeave.map(pendingLeaveItem).join("")
    : `<li class="muted">${escapeHtml(t.leavePendingNone)}</li>`;
}

/** The community's approved leave under way or to come (today or later its last day), the
 * caller's own aside (it is in "my leave"), soonest first. */
async function showCurrentLeave() {
  const me = Number(tokenUser(getToken()));
  const today = todayLocal();
  try {
    currentLeave = (await api(`/api/v1/leaves?status=approved&ends_from=${today}`))
      .filter((l) => l.worker_id !== me)
      .sort((a, b) => a.start_date.localeCompare(b.start_date) || a.id - b.id);
  } catch {
    $("leave-current").innerHTML = `<li class="muted">${escapeHtml(navigator.onLine ? t.leaveUnavailable : t.leaveOffline)}</li>`;
    return;
  }
  $("leave-current").innerHTML = currentLeave.length ? currentLeave.map(currentLeaveItem).join("")
    : `<li class="muted">${escapeHtml(t.leaveCurrentNone)}</li>`;
  // Who is away today marks the grid tasks' 改派给… lists.
  if (gridTasks.length) await showGridTasks();
}

async function loadLeave(mine = null) {
  const role = tokenClaims(getToken()).role;
  const requests = LEAVE_REQUESTERS.includes(role);
  const decides = LEAVE_DECIDERS.includes(role);
  $("leave").hidden = !requests && !decides; // a district viewer reads leave elsewhere
  $("leave-mine").hidden = !requests;
  $("leave-decide").hidden = !decides;
  $("leave-offline").hidden = navigator.onLine;
  $("leave-online").hidden = !navigator.onLine;
  if (!navigator.onLine) return;
  await Promise.all([requests && showMyLeave(mine || readMyLeave()), decides && showPendingLeave(), decides && showCurrentLeave()]);
}

// One request at a time: a second tap while the first is on its way would ask for the same days
// again (refused as overlapping, and said so, confusingly).
let requestingLeave = false;
$("leave-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (requestingLeave) return;
  if (!navigator.onLine) {
    sayLeave("leave-status", t.leaveOffline, true);
    return;
  }
  const form = new FormData(e.target);
  const body = { start_date: form.get("start_date"), end_date: form.get("end_date"), reason: form.get("reason") || "" };
  requestingLeave = true;
  $("leave-submit").disabled = true;
  sayLeave("leave-status", "");
  let said;
  let refused = false;
  try {
    // Pressed again after a lost answer: the leave first asked for, not a 409 "already covers".
    await apiOnce("/api/v1/leaves", { method: "POST", body });
    e.target.reset();
    said = t.leaveSent;
  } catch (error) {
    [said, refused] = [leaveProblem(error, "request"), true]; // the form keeps what was typed
  } finally {
    requestingLeave = false;
    $("leave-submit").disabled = false;
  }
  // Said once the list shows what the server now holds.
  await showMyLeave();
  sayLeave("leave-status", said, refused);
});

$("leave-list").addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-leave]");
  if (!button) return;
  const leave = myLeave.find((l) => String(l.id) === button.dataset.leave);
  if (!leave) return;
  const withdraw = leave.status === "requested";
  const back = button.classList.contains("end");
  const ask = back ? t.leaveBackConfirm : withdraw ? t.leaveWithdrawConfirm : t.leaveCancelConfirm;
  if (!confirm(ask(leaveDays(leave)))) return;
  button.disabled = true;
  sayLeave("leave-status", "");
  let said;
  let refused = false;
  try {
    if (back) {
      const yesterday = todayLocal(new Date(Date.now() - 86400000));
      await apiOnce(`/api/v1/leaves/${leave.id}/end`, { method: "POST", body: { last_day: yesterday } });
      said = t.leaveBackDone;
    } else {
      await apiOnce(`/api/v1/leaves/${leave.id}/cancel`, { method: "POST" });
      said = withdraw ? t.leaveWithdrawn : t.leaveCancelled;
    }
  } catch (error) {
    [said, refused] = [leaveProblem(error, back ? "end" : "cancel"), true];
  }
  const mine = readMyLeave(); // one read for both
  loadShifts(mine); // back today, or the leave cancelled: today's post is the roster's again
  await showMyLeave(mine);
  sayLeave("leave-status", said, refused);
});

$("leave-pending").addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-decision]");
  if (!button) return;
  const leave = pendingLeave.find((l) => String(l.id) === button.dataset.leave);
  if (!leave) return;
  const { decision } = button.dataset;
  const name = leave.worker_name || `#${leave.worker_id}`;
  // A rejection asks why (optional): the worker reads it on their leave (`decision_note`).
  const note = decision === "reject" ? prompt(t.leaveRejectConfirm(name, leaveDays(leave)), "") : "";
  if (note === null) return;
  for (const b of button.parentElement.querySelectorAll("button")) b.disabled = true;
  sayLeave("leave-decide-status", "");
  let said;
  let refused = false;
  try {
    // The worker is told the decision (push, `leave_decided`; the note only said to be there).
    // Approved, the answer lists the worker's shifts and open tasks on those days, to hand on.
    const body = { decision, note: note.trim().slice(0, 500) };
    const decided = await apiOnce(`/api/v1/leaves/${leave.id}/decision`, { method: "POST", body });
    said = decided.status === "approved"
      ? t.leaveApproved(name, decided.shifts_to_reassign?.length || 0, decided.tasks_to_reassign?.length || 0)
      : t.leaveRejected(name);
  } catch (error) {
    [said, refused] = [leaveProblem(error, "decide"), true]; // decided meanwhile: the list shows it gone
  }
  // Approved, the leave is under way or to come: listed there at once, to cancel if need be.
  await Promise.all([showPendingLeave(), showCurrentLeave()]);
  sayLeave("leave-decide-status", said, refused);
});

$("leave-current").addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-leave]");
  if (!button) return;
  const leave = currentLeave.find((l) => String(l.id) === button.dataset.leave);
  if (!leave) return;
  const end = button.classList.contains("end");
  const name = leave.worker_name || `#${leave.worker_id}`;
  if (!confirm((end ? t.leaveEndConfirm : t.leaveCancelOtherConfirm)(name, leaveDays(leave)))) return;
  button.disabled = true;
  sayLeave("leave-current-status", "");
  let said;
  let refused = false;
  try {
    if (end) {
      const yesterday = todayLocal(new Date(Date.now() - 86400000));
      await apiOnce(`/api/v1/leaves/${leave.id}/end`, { method: "POST", body: { last_day: yesterday } });
      said = t.leaveEnded(name);
    } else {
      await apiOnce(`/api/v1/leaves/${leave.id}/cancel`, { method: "POST" });
      said = t.leaveCancelledOther(name);
    }
  } catch (error) {
    [said, refused] = [leaveProblem(error, end ? "end" : "cancel"), true]; // the list shows what is now
  }
  await showCurrentLeave();
  sayLeave("leave-current-status", said, refused);
});

// The user this page was started for (null: none, the sign-in form shown). A second tab of the
// app shares the phone's sign-in: signed out there, or another user signed in there, this page
// worked on for the user gone (a visit saved went under whoever's token was stored by then, or
// none). The page follows the sign-in: the token's user changed or gone (told by the `storage`
// event, which only the other tabs get), it opens again, as the sign-in form or for the one
// signed in now. The token refreshed for the same user changes nothing.
let pageUser = null;
addEventListener("storage", (e) => {
  if (e.key !== null && e.key !== TOKEN_KEY) return; // null: the storage cleared
  if ((tokenUser(getToken()) || null) !== pageUser) location.reload();
});

async function start() {
  pageUser = tokenUser(getToken());
  // The header names the role signed in: a leader or an admin read "网格员".
  $("title").textContent = t.roleTitles[tokenClaims(getToken()).role] || t.title;
  $("signin").hidden = true;
  $("signin-error").textContent = "";
  clearSessionScreen(); // whatever the last session left (an edit, a task's page) is not theirs
  $("home").hidden = false;
  $("signout").hidden = false;
  // The service worker may have refreshed the tokens while the page was closed: take the newest.
  let stored;
  try {
    stored = await getMeta("token");
  } catch {
    await noStorage(); // IndexedDB refused since the sign-in
    return;
  }
  if (stored && stored !== getToken() && tokenUser(stored) === tokenUser(getToken())) {
    await storeTokens(stored, await getMeta("refresh"));
  }
  keepFresh();
  resetDevices(); // another worker's devices never show: read afresh for whoever signed in
  // The device list reads this browser's registration: after it is refreshed.
  if (navigator.onLine) rebindPush().catch(() => {}).finally(() => loadDevices());
  else loadDevices();
  loadQuietHours();
  // My leave is read once: today's post and the leave card both show it.
  const mine = readMyLeave();
  mine.catch(() => {}); // offline: each says so its own way
  resetInbox(); // another worker's list never shows: read afresh for whoever signed in
  showReportProblem();
  await restoreInbox(); // the notices kept for them, shown until read afresh (offline: as they were)
  await Promise.all([refreshInbox(), loadShifts(mine), loadTasks(), loadGridTasks(), loadPlanAndHouseholds(), loadRecurring(), showQueue(), showFlagged(), loadLeave(mine)]);
  openNotified(noticeOpenedAt()); // a push tapped with the app closed
  if (navigator.onLine) await sync();
  document.body.dataset.ready = "1";
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  try {
    await signIn(form.get("username"), form.get("password"));
  } catch (error) {
    if (error instanceof StorageUnavailable) {
      await noStorage();
      return;
    }
    $("signin-error").textContent = signInFailure(error, lang, { badLogin: t.badLogin, failed: t.signinFailed });
    return;
  }
  $("signin").hidden = true;
  e.target.elements.password.value = ""; // not left in the hidden form (wireSignIn says why)
  begin(form.get("password"));
});
// IndexedDB refused (a private window, site storage off): no visit recorded offline could be
// kept, nor the tokens the service worker syncs with. Signed in all the same, the token stayed
// in localStorage and the app opened as an empty home that failed to start, without a word.
async function noStorage() {
  await signOut().catch(() => {});
  $("home").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = t.noStorage;
}
// A password an admin set is replaced by the worker's own first: until then the server answers
// nothing else (`password` is the one just typed, not asked again).
async function begin(password = "") {
  if (mustChangePassword()) {
    // "退出" stays at hand: the office opens its new accounts with one password, and a worker
    // who typed a colleague's username had no way back but to set that account's password
    // (a reload asked again), locking its owner out.
    $("signout").hidden = false;
    await askForOwnPassword(lang, password, { className: "card", parent: document.querySelector("main") });
  }
  start();
}
// Sign-out ends the session on the server, stops pushes to this browser and deletes the queue and
// the cached households. Queued visits are the worker's work: they get one more sync first, and
// any still unsynced (or another user's) are deleted only once the worker confirms.
let signingOut = false;
async function signOutHere() {
  if (signingOut) return;
  signingOut = true;
  try {
    await endSignIn();
  } finally {
    signingOut = false;
  }
}
async function endSignIn() {
  if (navigator.onLine) await syncQueue().catch(() => {});
  // Everything still queued goes with the sign-out: pending visits (this worker's or another's)
  // and visits the server refused, which wait here to be corrected.
  // A refused register correction is a notice read, not work left: it goes without a word.
  const queued = (await listQueued()).filter((r) => r.state !== "correction-refused");
  const refused = queued.filter((r) => r.state === "rejected").length;
  const lost = queued.filter((r) => r.state === "overtaken").length;
  // So do the problems reported on the rounds and not yet sent (or refused, to be fixed).
  if (navigator.onLine) await problems.sendWaiting().catch(() => {});
  const reports = (await listReports().catch(() => [])).length;
  // And the steps taken on tasks and kept on the phone (sent first, when online).
  if (navigator.onLine) await detail.sendWaiting().catch(() => {});
  const steps = (await listSteps().catch(() => [])).length;
  const unsent = [
    queued.length && t.unsynced(queued.length, refused, lost), reports && t.unsentReports(reports), steps && t.unsentSteps(steps),
  ].filter(Boolean);
  if (unsent.length && !confirm(t.signOutAnyway(unsent))) {
    await showQueue();
    return;
  }
  await signOut(); // this browser's push device too, and its subscription
  await clearQueue();
  location.reload();
}
// The session ended elsewhere (signed out on another page, password changed, revoked) or ran out:
// sign in again. The queue stays; it syncs once the worker who recorded it is back.
// Said as the server gave the reason (`session_ended`): told "expired" when an admin had reset
// the password, the worker signed in with the one they knew and read that it was wrong; switched
// off, they never learnt why, nor that the visits on the phone wait for someone to hand them over.
addEventListener("gridwork:session-ended", async (e) => {
  if (signingOut) return;
  pageUser = null;
  $("home").hidden = true;
  clearSessionScreen(); // the edit begun, the task's page open: the signed-out worker's
  resetInbox(); // the notices are the signed-out worker's
  forgetInbox(); // and so is their copy on the phone
  resetDevices(); // and so are the devices
  forgetFacts(); // and so are the households' register facts
  $("signout").hidden = true;
  $("signin").hidden = false;
  const { why, user } = e.detail || {};
  let said = t.sessionEndedBy[why] || t.sessionEnded;
  $("signin-error").textContent = said;
  if (why === "switched-off") {
    const left = (await listQueued().catch(() => []))
      .filter((r) => r.user === user && ["pending", "rejected"].includes(r.state)).length;
    if (left) said += (lang === "zh" ? "" : " ") + t.switchedOffQueued(left);
    if (!getToken()) $("signin-error").textContent = said; // nobody signed in meanwhile
  }
});
$("signout").addEventListener("click", (e) => {
  e.preventDefault();
  signOutHere();
});

// The account card: a new password of the worker's choosing (the other sessions end with it), and
// sign-out everywhere (a lost phone, a password seen): every session ends, this one too, and no
// device is sent pushes. The queue stays, as when a session ends: it syncs once they sign in.
$("change-password").addEventListener("click", async () => {
  if ($("account-form").firstChild) return; // the form is open
  $("account-status").textContent = "";
  await askForOwnPassword(lang, "", { className: "", parent: $("account-form"), why: "ownPasswordChange" });
  $("account-status").textContent = t.passwordChanged;
});
$("signout-all").addEventListener("click", async () => {
  $("account-status").textContent = "";
  if (!navigator.onLine) {
    $("account-status").textContent = t.accountOffline;
    return;
  }
  if (!confirm(t.signOutAllConfirm)) return;
  await syncQueue().catch(() => {});
  let answer;
  try {
    answer = await api("/api/v1/auth/logout-all", { method: "POST" });
  } catch (failure) {
    $("account-status").textContent = t.accountFailed + failure.message;
    return;
  }
  await letGoOfPush();
  await forgetSignIn();
  pageUser = null;
  $("home").hidden = true;
  clearSessionScreen();
  resetInbox();
  resetDevices();
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = t.signedOutEverywhere(answer.sessions_revoked);
});

// The plan shown as kept is read again once the visits waiting have gone (counted by the server).
window.addEventListener("online", () => { showNet(); sync().then(() => { if (planSaved && getToken()) loadPlanAndHouseholds(); }); if (getToken()) { loadTasks(); loadGridTasks(); loadLeave(); loadDevices(); loadQuietHours(); refreshInbox(); } });
window.addEventListener("offline", () => { showNet(); if (getToken()) { loadGridTasks(); loadLeave(); refreshInbox(); } });
// Back to the app (a push said a request waits or was decided, a task escalated): read again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && getToken() && !$("home").hidden) { loadGridTasks(); loadLeave(); refreshInbox(); }
});
// The service worker relays a push ("inbox-changed"): its notice is in the inbox.
navigator.serviceWorker?.addEventListener("message", (e) => {
  if (e.data === "queue-changed") { showQueue(); showFlagged(); }
  if (e.data === "inbox-changed") refreshInbox();
  if (e.data?.notice) openNotified(Number(e.data.notice)); // a push tapped
});
showNet();
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register(`/app/sw.js?v=${config.version || "dev"}`, { scope: "/app", type: "module" }).catch(() => {});
}
if (getToken()) begin();
else $("signin").hidden = false;
