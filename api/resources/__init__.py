"""The HTTP resources, registered in this order (it is also the order of the OpenAPI document)."""

from __future__ import annotations

from api.extensions import Api
from api.resources.audit.routes import blp as audit_blp
from api.resources.auth.routes import blp as auth_blp
from api.resources.devices.routes import blp as devices_blp
from api.resources.grids.routes import blp as grids_blp
from api.resources.households.routes import blp as households_blp
from api.resources.notifications.routes import blp as notifications_blp
from api.resources.reports.routes import blp as reports_blp
from api.resources.rosters.routes import blp as rosters_blp
from api.resources.rosters.routes import feed_blp as calendar_blp
from api.resources.tasks.routes import blp as tasks_blp
from api.resources.tasks.routes import settings_blp as task_settings_blp
from api.resources.tiles.routes import blp as tiles_blp
from api.resources.users.routes import blp as users_blp
from api.resources.visits.routes import blp as visits_blp

BLUEPRINTS = (
    auth_blp,
    users_blp,
    grids_blp,
    households_blp,
    visits_blp,
    rosters_blp,
    calendar_blp,
    tasks_blp,
    task_settings_blp,
    devices_blp,
    notifications_blp,
    tiles_blp,
    audit_blp,
    reports_blp,
)


def register_blueprints(api: Api) -> None:
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    # Shapes answers build by plain functions refer to (`$ref`), registered for the document.
    from api.resources.users.schemas import HandedOnSchema
    from api.resources.visits.schemas import EvidenceSchema, VisitLocationSchema

    api.spec.components.schema("VisitLocation", schema=VisitLocationSchema)
    api.spec.components.schema("Evidence", schema=EvidenceSchema)
    api.spec.components.schema("HandedOn", schema=HandedOnSchema)
