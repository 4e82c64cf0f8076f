"""HTTP hardening: CORS for configured origins only, security headers, no caching of PII."""

from __future__ import annotations

from flask import Flask, request
from flask.sessions import SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match, Idempotency-Key"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# JSON answers never run script or load anything; the docs and web pages set their own needs.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


class NoCookieSession(SessionInterface):
    """The API keeps no cookie session: a token authenticates every request. Flask's default
    read (and would sign) a session cookie on every request; here `flask.session` is Flask's
    null session, which refuses to be written."""

    def open_session(self, app, request):
        return None  # Flask then uses make_null_session

    def save_session(self, app, session, response):
        return None


def init_app(app: Flask) -> None:
    origins = {o.strip() for o in app.config.get("CORS_ORIGINS", "").split(",") if o.strip()}
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        # request.remote_addr (and is_secure) from what the last `proxies` proxies appended.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    @app.before_request
    def preflight():
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            response = app.make_default_options_response()
            return _cors(response, origins)
        return None

    @app.after_request
    def headers(response):
        _cors(response, origins)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.path.startswith("/api/"):
            if not request.path.startswith("/api/v1/docs"):
                response.headers.setdefault("Content-Security-Policy", API_CSP)
            # API answers carry residents' data: no shared or browser caches unless a view says.
            if "Cache-Control" not in response.headers:
                response.headers["Cache-Control"] = "no-store"
        return response


def _cors(response, origins: set[str]):
    # The answer depends on Origin whether or not it is allowed: caches must key on it.
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin and origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Expose-Headers"] = (
            "X-Pagination, X-Inbox-Cursor, ETag, Retry-After"
        )
        response.headers["Access-Control-Max-Age"] = "600"
    return response
