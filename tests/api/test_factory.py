"""The app factory: configuration, health, the OpenAPI document and the docs page."""

import pytest

from api import create_app, crypto
from api.settings import ConfigError, load_config, normalise_database_url


def test_test_config_overrides_defaults(app):
    assert app.testing


def test_default_config_is_not_testing(database_url):
    assert not create_app({"DATABASE_URL": database_url, "DATA_KEY": crypto.new_key()}).testing


def test_without_a_data_key_the_app_refuses_to_start_outside_development(database_url, monkeypatch):
    # Sealed under the development key, which is in the source, the phones and notes of a
    # stolen dump would open for anyone: a deployment must not run on it unnoticed.
    monkeypatch.delenv("GRIDWORK_DATA_KEY", raising=False)
    monkeypatch.delenv("GRIDWORK_ENV", raising=False)
    with pytest.raises(crypto.DataKeyError, match="GRIDWORK_DATA_KEY"):
        create_app({"DATABASE_URL": database_url})


def test_a_development_deployment_may_run_on_the_development_key(database_url, monkeypatch):
    monkeypatch.delenv("GRIDWORK_DATA_KEY", raising=False)
    monkeypatch.setenv("GRIDWORK_ENV", "development")
    try:
        app = create_app({"DATABASE_URL": database_url})
        assert app.config["GRIDWORK_ENV"] == "development"
    finally:
        crypto.configure(None)


def test_database_url_from_environment_gets_the_psycopg_driver(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db:5432/x")
    assert load_config()["DATABASE_URL"] == "postgresql+psycopg://u@db:5432/x"


# --- signing keys and their fallbacks (a rotation) ---------------------------------------------
@pytest.fixture()
def signing_env(monkeypatch):
    """An environment without signing keys but those a test sets."""
    for name in (
        "GRIDWORK_SECRET_KEY",
        "GRIDWORK_SECRET_KEY_FALLBACKS",
        "GRIDWORK_JWT_SECRET",
        "GRIDWORK_JWT_SECRET_FALLBACKS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_secret_key_fallbacks_are_a_comma_separated_list_trimmed(signing_env):
    signing_env.setenv("GRIDWORK_SECRET_KEY_FALLBACKS", " old-key-2 ,, old-key-1 ,")
    assert load_config()["SECRET_KEY_FALLBACKS"] == ["old-key-2", "old-key-1"]


def test_without_fallbacks_only_the_current_key_verifies(signing_env):
    config = load_config()
    assert config["SECRET_KEY_FALLBACKS"] == []
    assert config["JWT_SECRET_KEY_FALLBACKS"] == []


def test_tokens_signed_with_the_secret_key_fall_back_to_its_fallbacks(signing_env):
    signing_env.setenv("GRIDWORK_SECRET_KEY", "current-key")
    signing_env.setenv("GRIDWORK_SECRET_KEY_FALLBACKS", "old-key")
    config = load_config()
    assert config["JWT_SECRET_KEY"] == "current-key"
    assert config["JWT_SECRET_KEY_FALLBACKS"] == ["old-key"]


def test_a_separate_jwt_secret_has_fallbacks_of_its_own(signing_env):
    signing_env.setenv("GRIDWORK_SECRET_KEY_FALLBACKS", "old-key")
    signing_env.setenv("GRIDWORK_JWT_SECRET", "current-jwt-key")
    signing_env.setenv("GRIDWORK_JWT_SECRET_FALLBACKS", "old-jwt-key")
    config = load_config()
    assert config["SECRET_KEY_FALLBACKS"] == ["old-key"]
    assert config["JWT_SECRET_KEY_FALLBACKS"] == ["old-jwt-key"]


def test_jwt_fallbacks_without_a_jwt_secret_are_refused(signing_env):
    """Tokens are then signed with GRIDWORK_SECRET_KEY: the old keys listed would be ignored."""
    signing_env.setenv("GRIDWORK_JWT_SECRET_FALLBACKS", "old-jwt-key")
    with pytest.raises(ConfigError, match="GRIDWORK_SECRET_KEY_FALLBACKS"):
        load_config()


def test_normalise_keeps_an_explicit_driver():
    url = "postgresql+psycopg://u@h/d"
    assert normalise_database_url(url) == url


def test_health_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_openapi_document_is_served(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json["paths"]
    for path in (
        "/api/v1/grids",
        "/api/v1/grids/locate",
        "/api/v1/households/import",
        "/api/v1/auth/token",
    ):
        assert path in paths


def test_every_reference_of_the_openapi_document_resolves(client):
    """A `$ref` written by hand (a Function field's metadata) names a component only if some
    schema registers it: a client generator stops at the first that does not."""
    import json
    import re

    document = client.get("/api/v1/openapi.json").json
    text = json.dumps(document)
    refs = set(re.findall(r'"#/components/(\w+)/(\w+)"', text))
    assert refs
    dangling = sorted(
        f"{kind}/{name}" for kind, name in refs if name not in document["components"].get(kind, {})
    )
    assert dangling == []


def test_every_parameter_is_one_openapi_3_knows(client):
    """A second body argument (the photo's `sha256` form field beside its file) was documented
    as an OpenAPI 2 `formData` parameter, which OpenAPI 3 has not: generators drop or reject it."""
    paths = client.get("/api/v1/openapi.json").json["paths"]
    odd = [
        (path, method, parameter["name"], parameter["in"])
        for path, item in paths.items()
        for method, operation in item.items()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter.get("in") not in ("path", "query", "header", "cookie")
    ]
    assert odd == []


def test_a_photo_upload_documents_its_file_and_its_checksum(client):
    document = client.get("/api/v1/openapi.json").json
    body = document["paths"]["/api/v1/visits/{visit_id}/photos"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[1]
    properties = document["components"]["schemas"][name]["properties"]
    assert set(properties) == {"file", "sha256"}
    assert properties["file"]["format"] == "binary"


def test_a_batch_item_is_documented_by_the_schema_that_loads_it(client):
    """The items were `{}`, their description naming a `VisitItem` the document did not hold."""
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    items = schemas["VisitBatch"]["properties"]["visits"]["items"]
    assert items == {"$ref": "#/components/schemas/VisitItem"}
    item = schemas["VisitItem"]
    assert {"id", "visited_at", "location", "outcome"} <= set(item["required"])
    assert {"household_id", "premises", "notes", "observations"} <= set(item["properties"])


def test_interactive_docs_work_offline(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert b"/api/v1/docs/assets/swagger-ui-bundle.js" in page.data
    asset = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()


def test_unknown_route_is_a_problem(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404


def test_the_development_key_given_as_the_data_key_is_refused_outside_development(
    database_url, monkeypatch
):
    """The development key is in the source, and docs/security.md prints it (to move a demo's
    data onto a real key, as the old key). Given as GRIDWORK_DATA_KEY, the one setting that
    quiets the start's refusal, a production process ran on it without a word."""
    import base64

    development = base64.urlsafe_b64encode(crypto._DEV_KEY).decode().rstrip("=")
    monkeypatch.delenv("GRIDWORK_ENV", raising=False)
    try:
        with pytest.raises(crypto.DataKeyError, match="GRIDWORK_OLD_DATA_KEYS") as refused:
            create_app({"DATABASE_URL": database_url, "DATA_KEY": development})
        assert development not in str(refused.value)
        # As the old key of a rotation it is what the docs say to do.
        create_app(
            {
                "DATABASE_URL": database_url,
                "DATA_KEY": crypto.new_key(),
                "OLD_DATA_KEYS": development,
                "DATA_KEY_CHECK": False,
            }
        )
    finally:
        crypto.configure(None)


def test_health_on_a_database_a_newer_release_migrated_says_so(client, session):
    """During a rolling deploy the new release's `db upgrade` runs first: the old processes'
    /healthz told their operator to run `gridwork db upgrade`, which with the old code fails
    (an unknown revision). It names the newer schema and what to do instead."""
    from sqlalchemy import text

    session.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    response = client.get("/healthz")
    assert response.status_code == 503
    detail = response.json["detail"]
    assert "9999_from_the_future" in detail and "newer" in detail
    assert "db upgrade" not in detail
