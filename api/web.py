"""The browser pages: the grid-leader map (/map), the workers' PWA (/app), the community
office's accounts page (/accounts), the hall window's page (/window), the weekly coverage
report's page (/reports), the AB-post roster page (/rosters), the resident register's page
(/register), the audit log's page (/audit) and the tasks' ledger (/tasks), from web/dist."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, send_from_directory

from api import errors

bp = Blueprint("web", __name__)
log = logging.getLogger(__name__)

DEFAULT_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


def dist() -> Path:
    path = Path(current_app.config.get("WEB_DIST") or DEFAULT_DIST)
    if not (path / "version.json").is_file():
        raise errors.ServiceUnavailable(
            "The web assets are not built: run `npm ci && npm run build` in web/ "
            "(scripts/demo.sh and scripts/test.sh do it)."
        )
    return path


# The pages keep a bearer token in localStorage: nothing but our own files may run or load.
# MapLibre draws with a worker made from a blob: URL and decodes raster tiles through blob: and
# data: images (its CSS icons are data: SVGs); the basemap host, when configured, is added.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{basemap}; "
    "connect-src 'self'{basemap}; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?")


def basemap_source(url: str | None) -> str:
    """The CSP source (scheme://host[:port]) of the basemap tile URL template, or "" for none."""
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return ""  # a path on this server: 'self'
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(parts.netloc):
        log.warning("BASEMAP_URL %r names no plain http(s) host; the pages will not load it", url)
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def page_csp() -> str:
    source = basemap_source(current_app.config.get("BASEMAP_URL"))
    return PAGE_CSP.format(basemap=f" {source}" if source else "")


def _page(name: str) -> Response:
    response = send_from_directory(dist(), name, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = page_csp()
    return response


@bp.get("/map")
def map_page():
    return _page("map.html")


@bp.get("/accounts")
def accounts_page():
    return _page("accounts.html")


@bp.get("/window")
def window_page():
    return _page("window.html")


@bp.get("/reports")
def reports_page():
    return _page("reports.html")


@bp.get("/rosters")
def rosters_page():
    return _page("rosters.html")


@bp.get("/register")
def register_page():
    return _page("register.html")


@bp.get("/audit")
def audit_page():
    return _page("audit.html")


@bp.get("/tasks")
def tasks_page():
    return _page("tasks.html")


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
    # The pages are in dist too (/web/map.html is the map page, the token in its scripts'
    # reach): whatever is opened from here runs under the pages' policy, not none.
    response.headers["Content-Security-Policy"] = page_csp()
    if filename.endswith(".webmanifest"):
        response.mimetype = "application/manifest+json"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
