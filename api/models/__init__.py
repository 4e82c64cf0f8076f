"""SQLAlchemy models, one module per domain; importing this package registers them all."""

from api.db import Base
from api.models.admin import Community, District, Street
from api.models.grids import Grid, GridVersion
from api.models.households import CARE_TAGS, HOUSEHOLD_KINDS, OCCUPANCIES, Household
from api.models.users import ROLES, User, user_grids

__all__ = [
    "Base",
    "CARE_TAGS",
    "Community",
    "District",
    "Grid",
    "GridVersion",
    "HOUSEHOLD_KINDS",
    "Household",
    "OCCUPANCIES",
    "ROLES",
    "Street",
    "User",
    "user_grids",
]
