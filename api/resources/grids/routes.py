"""Grids as GeoJSON: list, create, read, redraw, retire, import, locate (one or many points)."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import func, select

from api import errors
from api.auth import current_scope
from api.clock import now as _now
from api.extensions import Blueprint, db
from api.models import Grid, GridVersion, Household
from api.resources.grids.schemas import (
    GridCollectionSchema,
    GridCreateSchema,
    GridImportResultSchema,
    GridImportSchema,
    GridPatchSchema,
    GridQueryArgsSchema,
    GridSchema,
    LocateBatchResultSchema,
    LocateBatchSchema,
    LocateQueryArgsSchema,
    WindowGridCollectionSchema,
    grid_outline,
)
from api.services import grids
from api.services.geometry import geojson
from api.services.weeks import LOCAL

blp = Blueprint("grids", __name__, url_prefix="/api/v1/grids", description="Grids (网格).")


def feature(grid: Grid) -> dict:
    """A grid as a GeoJSON Feature, with its live household count and boundary version."""
    # Both live figures in one round trip.
    households, valid_from = db.session.execute(
        select(
            select(func.count())
            .where(Household.grid_id == grid.id, Household.removed_at.is_(None))
            .scalar_subquery()
            .label("households"),
            select(GridVersion.valid_from)
            .where(GridVersion.grid_id == grid.id, GridVersion.version == grid.version)
            .scalar_subquery()
            .label("valid_from"),
        )
    ).one()
    return {
        "id": grid.id,
        "geometry": geojson(grid.boundary),
        "properties": {
            "code": grid.code,
            "name": grid.name,
            "community_code": grid.community_code,
            "community_name": grid.community.name,
            "leader_id": grid.leader_id,
            "target_households": grid.target_households,
            "households": households,
            "version": grid.version,
            "valid_from": valid_from,
        },
    }


@blp.route("")
class Grids(MethodView):
    @blp.arguments(GridQueryArgsSchema, location="query")
    @blp.response(200, GridCollectionSchema)
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List the grids you can see, as a FeatureCollection

        Filter by `bbox` and `community`; paginated (`page`, `page_size`, `X-Pagination`).
        """
        rows, total = grids.list_grids(
            db.session,
            current_scope(),
            community=args.get("community"),
            bbox=args.get("bbox"),
            page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return {"features": [feature(g) for g in rows]}

    @blp.arguments(GridCreateSchema)
    @blp.response(201, GridSchema)
    def post(self, data):
        """Create a grid from a GeoJSON Feature

        The community, street and district its code implies are created when missing.
        A geometry drawn on an Amap/Tencent or Baidu map says so in `datum` (gcj02, bd09):
        it is converted to WGS-84, in which the grid is stored and answered.
        """
        datum = data.pop("datum")
        grid = grids.create_grid(db.session, current_scope(), data, datum=datum)
        db.session.commit()
        return feature(grid)


@blp.route("/import")
class GridImport(MethodView):
    @blp.arguments(GridImportSchema)
    @blp.response(200, GridImportResultSchema)
    def post(self, data):
        """Import a FeatureCollection of grids, all or nothing

        New codes are created, known codes redrawn (a new boundary version) when changed; a
        feature's `leader_id` (checked) leads its grid, and without one a known grid keeps its
        leader. The codes in `retire` are retired in the same change (a merge: one grid
        retired, its neighbour drawn over both): their households go to the grids that then
        cover them, or nothing is imported. Every bad feature is named in `errors`. Features
        drawn on an Amap/Tencent or Baidu map say so in `datum` (gcj02, bd09): converted to
        WGS-84, in which the grids are stored.
        """
        summary = grids.import_grids(db.session, current_scope(), data, datum=data["datum"])
        db.session.commit()
        return summary


@blp.route("/window")
class WindowGrids(MethodView):
    @blp.response(200, WindowGridCollectionSchema)
    @blp.alt_response(403, response="FORBIDDEN", description="You open no tasks")
    def get(self):
        """The grids you may open a window task for today, as outlines (the window page)

        At the hall window (the A-post of a published roster today, Asia/Shanghai) a worker
        or leader opens window tasks for any grid of their community: every active grid of
        it, `at_window` true. Otherwise the grids you hold (the community's, for its admin).
        Outlines and names only: `yours` says which grids' households you may look up.
        """
        scope = current_scope()
        at_window, rows = grids.window_grids(db.session, scope, _now().astimezone(LOCAL).date())
        return {
            "at_window": at_window,
            "features": [grid_outline(scope, g) for g in rows],
        }


@blp.route("/locate")
class Locate(MethodView):
    @blp.arguments(LocateQueryArgsSchema, location="query")
    @blp.response(200, GridSchema)
    @blp.alt_response(404, response="NOT_FOUND", description="No grid holds the point")
    def get(self, args):
        """The grid containing a WGS-84 point, or 404"""
        grid = grids.locate(db.session, args["lon"], args["lat"], scope=current_scope())
        if grid is None:
            raise errors.NotFound(f"No grid of yours contains ({args['lon']}, {args['lat']}).")
        return feature(grid)

    @blp.arguments(LocateBatchSchema)
    @blp.response(200, LocateBatchResultSchema)
    def post(self, data):
        """The grids of many WGS-84 points at once (up to 1,000), in one lookup

        Each point gets the grid that `GET /locate` would return (its id and code), or nulls
        when no grid of yours contains it. For phones placing a list of premises, and import
        previews: one request instead of one per point.
        """
        points = [(p["lon"], p["lat"]) for p in data["points"]]
        found = grids.locate_many(db.session, current_scope(), points)
        return {
            "results": [
                {"lon": lon, "lat": lat, "grid_id": g and g.id, "grid_code": g and g.code}
                for (lon, lat), g in zip(points, found, strict=True)
            ]
        }


@blp.route("/<id:grid_id>")
class GridById(MethodView):
    @blp.response(200, GridSchema)
    def get(self, grid_id):
        """A grid as a GeoJSON Feature"""
        return feature(grids.get_grid(db.session, current_scope(), grid_id))

    @blp.arguments(GridPatchSchema)
    @blp.response(200, GridSchema)
    def patch(self, changes, grid_id):
        """Rename, re-target, change the leader, or redraw a grid

        A new `geometry` starts a new boundary version; the old one is kept with its period,
        and the grid of every household it touches is recomputed. A geometry drawn on an
        Amap/Tencent or Baidu map says so in `datum` (gcj02, bd09): it is converted to WGS-84,
        in which the grid is stored and answered. A `datum` without a `geometry` is 422.
        """
        grid = grids.get_grid(db.session, current_scope(), grid_id)
        grids.update_grid(db.session, current_scope(), grid, changes)
        db.session.commit()
        return feature(grid)

    @blp.response(204)
    @blp.alt_response(
        409, response="CONFLICT", description="The grid still holds households or open tasks"
    )
    def delete(self, grid_id):
        """Retire a grid that holds no households and no open task; its history stays for past
        reports"""
        grid = grids.get_grid(db.session, current_scope(), grid_id)
        grids.retire_grid(db.session, current_scope(), grid)
        db.session.commit()
