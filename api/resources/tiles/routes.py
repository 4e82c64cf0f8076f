"""Vector tiles (MVT) of grids, households, visits and tasks; a household's visit history."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView

from api import auth, clock, privacy
from api.auth import current_scope
from api.extensions import Blueprint, db
from api.resources.tiles.schemas import (
    TileQueryArgsSchema,
)
from api.services import tiles
from api.services.weeks import current_week, parse_week

blp = Blueprint("tiles", __name__, url_prefix="/api/v1", description="Map tiles (地图).")
# A map asks for dozens of tiles at a time: they are served from a pool of their own, whose
# connections carry the tile settings and commit each statement (the tile, its audit entry).
blp.record_once(
    lambda state: db.autocommit_pool(state.app, ["tiles.Tile"], tiles.tile_settings(True))
)
# After a map session's first tile, each tile's statement checks its token too (api.auth).
auth.defer_token_check(blp, ["tiles.Tile"])

MVT = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "private, max-age=60"


def known_etags() -> tuple[str, ...]:
    """The ETags the client holds (If-None-Match), compared weakly as RFC 9110 says: a proxy
    that compresses the tile (nginx's gzip) hands it on with its ETag made weak, W/"...", and
    the client sends that back."""
    tokens = (t.strip() for t in request.headers.get("If-None-Match", "").split(","))
    return tuple(t.removeprefix("W/") for t in tokens if t)


def tile_response(data: bytes, etag: str, known: tuple[str, ...]) -> Response:
    """200 with the tile, 204 when empty, 304 when the client holds (`known`) these bytes."""
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
    if etag in known or not data:
        # No body: no Content-Type (Flask's default would say text/html).
        response = Response(status=304 if etag in known else 204, headers=headers)
        del response.headers["Content-Type"]
        return response
    return Response(data, status=200, mimetype=MVT, headers=headers)


@blp.route("/tiles/<layer>/<int(signed=True):z>/<int(signed=True):x>/<int(signed=True):y>.mvt")
class Tile(MethodView):
    @blp.arguments(TileQueryArgsSchema, location="query")
    @blp.doc(
        responses={
            "200": {"description": "The tile", "content": {MVT: {}}},
            "204": {"description": "No feature of yours in this tile"},
            "304": {"description": "Not modified (If-None-Match)"},
        }
    )
    def get(self, args, layer, z, x, y):
        """A vector tile of one layer: grids, households, visits or tasks

        Scoped to the caller; `week` (default this week) sets the coverage and visit week.
        Strong ETags (hash of the bytes), `Cache-Control: private, max-age=60`.
        """
        week = args.get("week") or current_week()
        parse_week(week)
        # Read once: the statement (no audit of bytes the client holds) and the answer.
        known = known_etags()
        check = auth.deferred_check()
        tile = _render(layer, z, x, y, week, known, check)
        if tile is None:  # the statement found the token dead or its user's scope changed
            auth.check_token_now()  # 401, or the scope as it is now
            tile = _render(layer, z, x, y, week, known, None)
        elif check is not None:
            auth.confirm_check()
        db.session.commit()
        return tile_response(*tile, known)


def _render(layer, z, x, y, week, known, check) -> tuple[bytes, str] | None:
    req = tiles.TileRequest(
        layer,
        z,
        x,
        y,
        week,
        clock.now(),
        precise_tracks=privacy.disclosure().tracks,
        known_etags=known,
    )
    # A map popup shows what the tile holds: that is a read of these records, written to
    # the audit log by the tile's own statement (not when the client holds these bytes).
    return tiles.render_tile(db.session, current_scope(), req, reader=privacy.reader(), check=check)
