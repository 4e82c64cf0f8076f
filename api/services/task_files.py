"""The tasks' ledger as a file (工单台账): the week's tasks a community office files, sends up to
the street, or goes through with the hotline's own list, in Chinese headers and words.

What the file holds is what the ledger page shows, the caller's tasks only: no complainant, no
description, no location. A file leaves the system (mailed, printed, left on a desk), so it
carries what the work with it needs and none of a resident's personal information.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Community
from api.scope import Scope
from api.services.tasks import is_overdue
from api.services.weeks import LOCAL

# The words the pages use (web/src/common.js TASK_TEXT.zh, web/src/task_detail.js).
STATUS_WORDS = {
    "new": "新建",
    "dispatched": "已派单",
    "accepted": "已接单",
    "in_progress": "处理中",
    "resolved": "已办结",
    "callback": "回访中",
    "closed": "已关闭",
    "returned": "已退回",
    "escalated": "已升级",
    "reopened": "已重启",
    "transferred": "已改派",
}
URGENCY_WORDS = {
    "danger": "危及生命财产",
    "utility": "水电气热",
    "general": "一般",
    "complex": "疑难复杂",
}
TYPE_WORDS = {
    "consultation": "咨询",
    "help": "求助",
    "complaint": "投诉",
    "report": "举报",
    "suggestion": "建议",
}
SOURCE_WORDS = {
    "hotline": "12345热线",
    "window": "窗口",
    "visit": "走访",
    "proactive": "巡查",
    "leader": "网格长",
}
LIST_WORDS = {"need": "需求清单", "problem": "问题清单"}
SATISFACTION_WORDS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}

# What the audit entry names as disclosed (of `privacy.fields_for("task")`: title,
# description, location, complainant): the file holds the title alone.
FIELDS = ("title",)

HEADER = [
    "编号",
    "登记时间",
    "来源",
    "12345工单号",
    "诉求类型",
    "紧急程度",
    "事项",
    "清单",
    "社区",
    "网格",
    "状态",
    "处理人",
    "首次联系时间",
    "办理时限",
    "办结时间",
    "关闭时间",
    "回访满意度",
    "是否超期",
    "改派至",
]


def local(moment: datetime | None) -> str | None:
    """A time as the office reads it: Beijing time to the minute ("2026-11-20 14:05")."""
    return None if moment is None else f"{moment.astimezone(LOCAL):%Y-%m-%d %H:%M}"


def ledger_row(
    task: Any, community_names: dict[str, str], now: datetime, seen: set[int]
) -> list[Any]:
    """A task's line in the ledger: its words in Chinese, its times in Beijing time."""
    grid = task.grid
    assignee = task.assignee
    return [
        task.id,
        local(task.created_at),
        SOURCE_WORDS.get(task.source, task.source),
        task.external_id,
        TYPE_WORDS.get(task.type, task.type),
        URGENCY_WORDS.get(task.urgency, task.urgency),
        task.title,
        LIST_WORDS.get(task.list_kind) if task.list_kind else None,
        community_names.get(grid.community_code, grid.community_code),
        grid.code,
        STATUS_WORDS.get(task.status, task.status),
        (assignee.display_name or assignee.username) if assignee else None,
        local(task.first_contact_at),
        local(task.due_at),
        local(task.resolved_at),
        local(task.closed_at),
        SATISFACTION_WORDS.get(task.satisfaction) if task.satisfaction else None,
        "是" if is_overdue(task, now) else "否",
        task.transferred_to_id if task.transferred_to_id in seen else None,
    ]


def ledger_rows(
    session: Session, scope: Scope, tasks: list[Any], now: datetime
) -> Iterable[list[Any]]:
    """The tasks' lines, each naming its community (read once for them all). A ticket passed
    on names the task it went to only if the caller may see that task, as the list does."""
    seen = scope.visible_tasks(session, [task.transferred_to_id for task in tasks])
    codes = {task.grid.community_code for task in tasks}
    names = dict(
        session.execute(
            select(Community.code, Community.name).where(Community.code.in_(codes))
        ).all()
    )
    return (ledger_row(task, names, now, seen) for task in tasks)


def filename(args: dict[str, Any], fmt: str) -> str:
    """tasks[-week][-street][-community][-grid].fmt: what the file holds, by its name."""
    parts = [args.get(key) for key in ("week", "street", "community", "grid")]
    return "-".join(["tasks", *(p for p in parts if p)]) + f".{fmt}"
