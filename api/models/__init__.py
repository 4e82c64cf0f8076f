"""SQLAlchemy models, one module per domain; importing this package registers them all."""

from api.db import Base
from api.models.admin import Community, CommunityCadence, District, Street
from api.models.audit import AuditEntry, LoginAttempt
from api.models.auth import AuthSession
from api.models.grids import Grid, GridVersion
from api.models.households import CARE_TAGS, HOUSEHOLD_KINDS, OCCUPANCIES, Household
from api.models.idempotency import IdempotencyKey
from api.models.keys import DataKey, PhotoStorageKey
from api.models.notifications import NOTIFICATION_KINDS, PERSONAL_KINDS, Notification
from api.models.push import Delivery, Device, NotificationSettings, RevokedToken
from api.models.reports import (
    REPORT_FORMATS,
    REPORT_LEVELS,
    HouseholdHistory,
    Report,
    ReportFailure,
    ReportFile,
)
from api.models.rosters import CalendarFeed, Leave, Roster, Shift, ShiftChange, ShiftSwap
from api.models.tasks import Task, TaskEvent, TaskPhoto
from api.models.users import ROLES, GridHolding, GridLeadership, User, user_grids
from api.models.visits import HouseholdLastVisit, PhotoDeletion, Visit, VisitPhoto

__all__ = [
    "IdempotencyKey",
    "DataKey",
    "PhotoStorageKey",
    "AuditEntry",
    "AuthSession",
    "Base",
    "LoginAttempt",
    "CalendarFeed",
    "ShiftChange",
    "ShiftSwap",
    "CARE_TAGS",
    "Community",
    "CommunityCadence",
    "Delivery",
    "Device",
    "District",
    "Grid",
    "GridVersion",
    "Leave",
    "Roster",
    "Shift",
    "Task",
    "TaskEvent",
    "TaskPhoto",
    "HouseholdLastVisit",
    "Visit",
    "VisitPhoto",
    "PhotoDeletion",
    "HOUSEHOLD_KINDS",
    "Household",
    "NOTIFICATION_KINDS",
    "PERSONAL_KINDS",
    "Notification",
    "NotificationSettings",
    "RevokedToken",
    "OCCUPANCIES",
    "ROLES",
    "Street",
    "REPORT_FORMATS",
    "REPORT_LEVELS",
    "HouseholdHistory",
    "Report",
    "ReportFailure",
    "ReportFile",
    "GridHolding",
    "GridLeadership",
    "User",
    "user_grids",
]
