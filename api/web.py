"""The browser pages: the grid-leader map (/map) and the workers' PWA (/app), from web/dist."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, send_from_directory

from api import errors

bp = Blueprint("web", __name__)

DEFAULT_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


def dist() -> Path:
    path = Path(current_app.config.get("WEB_DIST") or DEFAULT_DIST)
    if not (path / "version.json").is_file():
        raise errors.ServiceUnavailable(
            "The web assets are not built: run `npm ci && npm run build` in web/ "
            "(scripts/demo.sh and scripts/test.sh do it)."
        )
    return path


def _page(name: str) -> Response:
    response = send_from_directory(dist(), name, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/map")
def map_page():
    return _page("map.html")


@bp.get("/app")
@bp.get("/app/")
def app_page():
    return _page("app.html")


@bp.get("/app/sw.js")
def service_worker():
    response = _page("sw.js")
    # Served under /app/ but controls "/app" itself too, so its scope may reach up to "/".
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/web/config.js")
def config_js():
    """The pages' settings: the optional basemap, the VAPID public key, the build version."""
    version = json.loads((dist() / "version.json").read_text())["version"]
    config = {
        "basemapUrl": current_app.config.get("BASEMAP_URL") or None,
        "vapidPublicKey": current_app.config.get("GRIDWORK_VAPID_PUBLIC_KEY") or None,
        "version": version,
    }
    body = "window.GRIDWORK_CONFIG = " + json.dumps(config) + ";\n"
    return Response(body, mimetype="text/javascript", headers={"Cache-Control": "no-cache"})


@bp.get("/web/<path:filename>")
def asset(filename: str):
    response = send_from_directory(dist(), filename, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    if filename.endswith(".webmanifest"):
        response.mimetype = "application/manifest+json"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
