"""What the server serves for the browser pages (/map, /app, /accounts, /window, /reports): their
Content-Security-Policy, and the workers' app offering only the task transitions the API lets an
assignee make."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from api.services.tasks import ASSIGNEE, OPEN_STATUSES, TRANSITIONS
from api.web import basemap_source

WEB_SRC = Path(__file__).resolve().parents[2] / "web" / "src"


@pytest.fixture()
def dist(tmp_path):
    """A stand-in for web/dist: the pages need not be built to be served."""
    (tmp_path / "version.json").write_text('{"version": "test"}')
    for name in (
        "map.html",
        "app.html",
        "accounts.html",
        "window.html",
        "reports.html",
        "rosters.html",
        "register.html",
        "audit.html",
        "tasks.html",
        "sw.js",
    ):
        (tmp_path / name).write_text(f"<!-- {name} -->")
    return tmp_path


def pages_client(database_url, connection, dist, **settings):
    from api.extensions import db
    from tests.factories import build_app

    app = build_app(database_url, WEB_DIST=str(dist), **settings)
    db.bind(connection)
    return app.test_client()


def get(client, path):
    response = client.get(path)
    response.close()  # a page is sent from a file
    return response


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.parametrize(
    "path",
    [
        "/map",
        "/app",
        "/app/",
        "/app/sw.js",
        "/accounts",
        "/window",
        "/reports",
        "/rosters",
        "/register",
        "/audit",
        "/tasks",
    ],
)
def test_the_pages_carry_a_content_security_policy(database_url, connection, dist, path):
    response = get(pages_client(database_url, connection, dist), path)
    assert response.status_code == 200
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval
    assert csp["style-src"] == ["'self'"]  # no inline style attributes either
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    # MapLibre: its worker is a blob: script, its raster tiles and CSS icons blob: and data: images.
    assert csp["worker-src"] == ["'self'", "blob:"]
    assert csp["img-src"] == ["'self'", "data:", "blob:"]
    assert csp["connect-src"] == ["'self'"]


@pytest.mark.parametrize(
    "name",
    [
        "map.html",
        "app.html",
        "accounts.html",
        "window.html",
        "reports.html",
        "rosters.html",
        "register.html",
        "audit.html",
        "tasks.html",
    ],
)
def test_a_page_fetched_as_a_web_asset_carries_the_pages_policy(
    database_url, connection, dist, name
):
    """/web/map.html is the map page too, with the token in reach of its scripts: served as a
    plain asset it had no Content-Security-Policy, so a link there ran the page without it."""
    client = pages_client(database_url, connection, dist)
    assert (
        get(client, f"/web/{name}").headers.get("Content-Security-Policy")
        == get(client, "/map").headers["Content-Security-Policy"]
    )


@pytest.mark.parametrize(
    "path", ["/accounts", "/window", "/reports", "/rosters", "/register", "/audit", "/tasks"]
)
def test_an_office_page_is_served_with_the_maps_headers(database_url, connection, dist, path):
    client = pages_client(database_url, connection, dist, BASEMAP_URL="https://t.example.cn/{z}")
    page = client.get(path)
    body = page.get_data(as_text=True)
    page.close()
    map_page = get(client, "/map")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert body == f"<!-- {path[1:]}.html -->"
    for header in ("Content-Security-Policy", "Cache-Control"):
        assert page.headers[header] == map_page.headers[header]


@pytest.mark.parametrize(
    "page", sorted(str(p.relative_to(WEB_SRC)) for p in WEB_SRC.rglob("*.html"))
)
def test_a_page_runs_no_inline_script_or_style(page):
    """The CSP refuses them: an inline script, handler or style attribute would silently not run."""
    html = (WEB_SRC / page).read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert re.findall(r"\sstyle\s*=", html) == []
    assert "<style" not in html


@pytest.mark.parametrize(
    "page", sorted(p.name for p in WEB_SRC.glob("*.html") if "<!-- include:" in p.read_text())
)
def test_a_built_page_carries_the_pieces_it_includes(page):
    """The office pages' sign-in form is written once (web/src/partials) and put in each page by
    the build (web/build.mjs): the page served has the piece where its include line stood."""
    built = (WEB_SRC.parent / "dist" / page).read_text()
    signin = (WEB_SRC / "partials" / "signin.html").read_text().strip().splitlines()
    assert "<!-- include:" not in built
    assert "\n".join("  " + line for line in signin) in built


def test_the_pages_csp_allows_the_configured_basemap_host(database_url, connection, dist):
    client = pages_client(
        database_url,
        connection,
        dist,
        BASEMAP_URL="https://t0.tiles.example.cn:8443/img_w/{z}/{x}/{y}.png?tk=k",
    )
    csp = directives(get(client, "/map"))
    assert csp["img-src"] == ["'self'", "data:", "blob:", "https://t0.tiles.example.cn:8443"]
    assert csp["connect-src"] == ["'self'", "https://t0.tiles.example.cn:8443"]
    assert "https://t0.tiles.example.cn:8443" not in csp["script-src"]


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (None, ""),
        ("", ""),
        ("/tiles/{z}/{x}/{y}.png", ""),  # this server: 'self'
        ("http://10.0.0.5/{z}/{x}/{y}.png", "http://10.0.0.5"),
        ("https://tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org"),
        ("javascript:alert(1)", ""),
        ("https://a.example.org; script-src *;/{z}", ""),  # never smuggles a directive in
    ],
)
def test_basemap_source(url, source):
    assert basemap_source(url) == source


def test_json_answers_keep_their_own_locked_csp(database_url, connection, dist):
    response = get(pages_client(database_url, connection, dist), "/api/v1/grids")
    assert directives(response)["default-src"] == ["'none'"]


def worker_actions() -> dict[str, list[str]]:
    """The WORKER_ACTIONS map of web/src/app.js, read from the source."""
    source = (WEB_SRC / "app.js").read_text()
    body = re.search(r"const WORKER_ACTIONS = (\{.*?\});", source, re.S).group(1)
    return json.loads(re.sub(r"(\w+):", r'"\1":', body).replace(",\n}", "\n}"))


def test_the_app_offers_only_transitions_the_api_allows_the_assignee():
    offered = worker_actions()
    for status, actions in offered.items():
        for action in actions:
            rule = TRANSITIONS[action].get(status)
            assert rule is not None, f"the API refuses {action} from {status}"
            assert rule.by == ASSIGNEE, f"{action} from {status} is not the assignee's"
    # ...and no state the assignee can move a task out of is left without a button.
    movable = {
        status for rules in TRANSITIONS.values() for status, r in rules.items() if r.by == ASSIGNEE
    }
    assert set(offered) == movable


def js_constant(name: str):
    """A `const NAME = <JSON>;` of web/src/app.js, read from the source."""
    source = (WEB_SRC / "app.js").read_text()
    return json.loads(re.search(rf"const {name} = (.*?);\n", source, re.S).group(1))


def test_my_tasks_ask_for_the_open_statuses_of_the_api():
    assert js_constant("OPEN_TASK_STATUSES") == list(OPEN_STATUSES)


def test_the_apps_inbox_labels_every_notice_kind_the_api_sends_in_both_languages():
    """The inbox shows a short label per kind (web/src/app.js `noticeKinds`, Chinese and English):
    a kind added to the API (`device_retired`, say) is labelled, or the test says which."""
    from api.models.notifications import NOTIFICATION_KINDS

    source = (WEB_SRC / "app.js").read_text()
    tables = re.findall(r"noticeKinds: \{(.*?)\}", source, re.S)
    assert len(tables) == 2  # zh and en
    for table in tables:
        assert set(re.findall(r"(\w+):", table)) == set(NOTIFICATION_KINDS)


def test_the_app_checks_the_visit_lengths_the_api_takes():
    from api.resources.visits.schemas import VisitItemSchema

    fields = VisitItemSchema().fields
    limits = {
        name: next(v.max for v in fields[name].validators if hasattr(v, "max"))
        for name in ("notes", "follow_up_note", "follow_up_title")
    }
    assert js_constant("VISIT_LIMITS") == limits


def test_the_app_refuses_the_follow_up_titles_the_api_refuses_as_not_one_line():
    """A title the app let through and the server refused was refused at sync, after the worker
    had left the door: the app's rule is the server's, character for character."""
    from api.services.names import has_control_characters

    source = (WEB_SRC / "app.js").read_text()
    pattern = re.search(r"const NOT_ONE_LINE = /(.*?)/;", source).group(1)
    js = re.compile(pattern)
    differ = [
        hex(code)
        for code in range(0x10000)
        if bool(js.search(chr(code))) != has_control_characters(chr(code))
    ]
    assert differ == []


def test_the_app_offers_the_lists_a_follow_up_may_go_on():
    """The visit form asks which list a follow-up goes on (需求 / 问题): the values the API takes,
    the need list chosen unless the worker says otherwise (what the API takes when none is
    sent), and the choice sent only with a follow-up."""
    from api.models.visits import FOLLOW_UP_DEFAULT, FOLLOW_UP_KINDS

    page = (WEB_SRC / "app.html").read_text()
    radios = re.findall(r'<input type="radio" name="follow_up_kind" value="(\w+)"[^>]*>', page)
    assert tuple(radios) == FOLLOW_UP_KINDS
    checked = re.search(r'name="follow_up_kind" value="(\w+)"[^>]*checked', page).group(1)
    assert checked == FOLLOW_UP_DEFAULT
    source = (WEB_SRC / "app.js").read_text()
    assert "...(fields.follow_up ? { follow_up_kind: fields.follow_up_kind } : {})" in source
    assert '"follow_up_kind"' in (WEB_SRC / "queue.js").read_text().split("EDITED_FIELDS")[1]


def test_the_app_asks_a_follow_ups_title_and_urgency_as_a_task_takes_them():
    """The visit form's follow-up asks what it is about (one line, as long as a task title may
    be) and how urgent (a task's urgencies, in common.js's words, general unless the worker
    says otherwise): sent with the follow-up only, and edited as the note is."""
    from api.models.tasks import URGENCIES, URGENCY_DEFAULT
    from api.resources.tasks.schemas import TITLE_MAX

    page = (WEB_SRC / "app.html").read_text()
    title = re.search(r'<input name="follow_up_title" id="follow-up-title"[^>]*>', page).group(0)
    assert f'maxlength="{TITLE_MAX}"' in title
    assert '<select name="follow_up_urgency" id="follow-up-urgency">' in page
    common = (WEB_SRC / "common.js").read_text()
    for words in re.findall(r"    urgencies: \{(.*?)\},\n", common):
        assert tuple(re.findall(r"(\w+):", words)) == URGENCIES
    source = (WEB_SRC / "app.js").read_text()
    assert f'const URGENCY_DEFAULT = "{URGENCY_DEFAULT}";' in source
    assert "Object.keys(TASK_TEXT[lang].urgencies)" in source
    assert (
        "...(fields.follow_up ? { follow_up_title: fields.follow_up_title, "
        "follow_up_urgency: fields.follow_up_urgency } : {})"
    ) in source
    edited = (WEB_SRC / "queue.js").read_text().split("EDITED_FIELDS")[1]
    assert '"follow_up_title"' in edited and '"follow_up_urgency"' in edited


def test_the_reports_page_shows_each_list_of_the_report():
    """The weekly report's `lists` (api/services/reports.py): each list open and done, in the
    totals and per grid; a report stored before the lists shows a dash."""
    from api.models.tasks import TASK_LISTS

    source = (WEB_SRC / "reports.js").read_text()
    page = (WEB_SRC / "reports.html").read_text()
    assert 'for (const kind of ["need", "problem"])' in source and TASK_LISTS == ("need", "problem")
    for kind in TASK_LISTS:
        assert f'data-figure="{kind}-list"' in page
        assert f"lists?.{kind}" in source


# --- why a visit was refused, in Chinese (web/src/reasons.js) ------------------------------------
def reasons_zh() -> dict:
    """The REASONS_ZH table of web/src/reasons.js, read from the source (it is JSON)."""
    source = (WEB_SRC / "reasons.js").read_text()
    return json.loads(re.search(r"export const REASONS_ZH = (\{.*?\n\});\n", source, re.S).group(1))


def test_the_app_words_every_refusal_code_of_the_visit_batch():
    """A refusal the service adds gets its code in `Refusal`, which fails here until the app
    can say it; a code the service dropped fails here too."""
    from api.services.visits import REFUSALS, Refusal

    assert set(reasons_zh()["codes"]) == {str(code) for code in Refusal} == set(REFUSALS)


def test_the_map_words_every_evidence_reason_in_short():
    """The leaders' map names why a visit's location evidence is weak (`evidenceShort`): every
    reason geo/evidence.py can give, and none it no longer gives."""
    from geo.evidence import REASON_GRADES

    assert set(reasons_zh()["evidenceShort"]) == set(REASON_GRADES)


def evidence_en() -> dict:
    """The EVIDENCE_EN table of web/src/reasons.js, read from the source (it is JSON)."""
    source = (WEB_SRC / "reasons.js").read_text()
    return json.loads(
        re.search(r"export const EVIDENCE_EN = (\{.*?\n\});\n", source, re.S).group(1)
    )


def test_the_evidence_is_worded_in_english_as_in_chinese():
    """In English the app and the map said the server's codes ("outside_grid,
    very_far_from_household"): every table of the Chinese evidence words has its English,
    reason for reason, with the same figures named."""
    zh, en = reasons_zh(), evidence_en()
    for table in ("grades", "evidence", "evidenceShort", "evidenceFigures"):
        assert set(en[table]) == set(zh[table]), table
    for reason, figures in zh["evidenceFigures"].items():
        named = re.findall(r"\{(\w+)\}", figures)
        assert re.findall(r"\{(\w+)\}", en["evidenceFigures"][reason]) == named, reason
    for reason in zh["evidence"]:
        assert ("{figures}" in en["evidence"][reason]) == ("{figures}" in zh["evidence"][reason])


def test_the_app_sends_again_only_refusals_a_change_on_the_server_can_lift():
    """web/src/queue.js `RETRIED_REFUSALS`: parked visits the app sends again without a tap.
    A code the service dropped fails here; a refusal of the visit's own content (a bad field or
    point, an id taken, a database rule) must wait for the worker's edit, not be resent forever."""
    from api.services.visits import Refusal

    source = (WEB_SRC / "queue.js").read_text()
    retried = json.loads(re.search(r"export const RETRIED_REFUSALS = (\[.*?\]);", source).group(1))
    assert set(retried) == {
        Refusal.HOUSEHOLD_NOT_FOUND,
        Refusal.NOT_YOUR_GRID,
        Refusal.NOT_STORED,
    }
    # Each says it is sent again by itself (and may be sent now).
    for code in retried:
        assert "自动重新发送" in reasons_zh()["codes"][code]


def _field_paths(schema, prefix: str = "") -> set[str]:
    import marshmallow as ma

    paths = set()
    for name, field in schema.fields.items():
        paths.add(prefix + name)
        if isinstance(field, ma.fields.Nested):
            paths |= _field_paths(field.schema, f"{prefix}{name}.")
    return paths


def test_the_app_names_every_field_of_a_visit():
    from api.resources.visits.schemas import VisitItemSchema

    assert _field_paths(VisitItemSchema()) <= set(reasons_zh()["fields"])


def test_the_app_words_the_visit_schemas_own_messages():
    """The messages VisitItemSchema words itself, and marshmallow's for a missing field: each
    said in Chinese, and none the server no longer says (a reworded message fails here)."""
    import marshmallow as ma

    from api.resources.tasks.schemas import BLANK
    from api.resources.visits import schemas
    from api.services.names import CONTROL_CHARACTERS

    own = {
        schemas.OUTSIDE_WEEKS,
        schemas.WHOLE_MINUTES,
        schemas.NUL_CHARACTER,
        schemas.BOTH_OR_NEITHER,
        schemas.ONE_TARGET,
        schemas.FOLLOW_UP_NOTE,
        CONTROL_CHARACTERS,
        BLANK,  # a follow-up's title, checked as a task's
        ma.fields.Field.default_error_messages["required"],
    }
    assert set(reasons_zh()["messages"]) == own


def _subclasses(cls) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_the_app_words_every_problem_type_the_api_answers():
    """A batch refused whole is a problem (RFC 9457) of one of these types: the error
    hierarchy's, the handlers' and every `slug="..."` the API writes."""
    from api.errors import HTTP_SLUGS, GridworkError

    api_dir = Path(__file__).resolve().parents[2] / "api"
    written = {
        slug
        for path in api_dir.rglob("*.py")
        for slug in re.findall(r'slug="([a-z0-9-]+)"', path.read_text())
    }
    types = {cls.slug for cls in _subclasses(GridworkError)} | set(HTTP_SLUGS.values()) | written
    assert "statement-timeout" in types and "forbidden" in types  # the search finds them
    problems = reasons_zh()["problems"]
    assert types <= set(problems)
    assert {"4xx", "5xx"} <= set(problems)  # a type unknown to the table, with no detail


def _imports(name: str) -> set[str]:
    """The modules `name` (of web/src) imports, and theirs."""
    found = {name}
    for module in re.findall(r'from "\./([\w.]+\.js)"', (WEB_SRC / name).read_text()):
        if module not in found:
            found |= _imports(module)
    return found


def test_the_app_shell_kept_offline_holds_every_module_the_app_imports():
    source = (WEB_SRC / "sw.js").read_text()
    listed = re.search(r"const SHELL = \[(.*?)\];", source, re.S).group(1)
    shell = set(re.findall(r'"(/web/[\w.]+\.js)"', listed))
    assert {f"/web/{name}" for name in _imports("app.js")} <= shell


# --- why a stored visit counts as weak evidence, in Chinese (web/src/reasons.js) ---------------
# Figures the app works out from the server's numbers (web/src/reasons.js `evidenceFigures`):
# a speed in km/h, how far ahead the phone's clock ran, how late the visit was synced.
DERIVED_FIGURES = {"speed_kmh", "minutes_ahead", "days_late"}


def _every_detail_of_the_grading() -> set[str]:
    """The names of the numbers `grade_visit` reports, from a visit that has all of them."""
    from datetime import UTC, datetime, timedelta

    from shapely.geometry import Point, box

    from geo.evidence import EvidenceInput, grade_visit

    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    evidence = grade_visit(
        EvidenceInput(
            point=Point(116.40, 39.91),
            accuracy_m=10,
            mock=False,
            visited_at=now,
            received_at=now,
            grid_boundary=box(116.39, 39.90, 116.41, 39.92),
            household_point=Point(116.401, 39.911),
            previous=(Point(116.402, 39.912), now - timedelta(minutes=5)),
            next=(Point(116.403, 39.913), now + timedelta(minutes=5)),
        )
    )
    return set(evidence.details)


def test_the_app_words_every_reason_of_the_evidence_grading():
    """A reason the grading adds (geo.evidence.REASON_GRADES) fails here until the app can say
    why a worker's visit counts as weak evidence; a reason the grading dropped fails here too."""
    from geo.evidence import REASON_GRADES

    table = reasons_zh()
    assert set(table["evidence"]) == set(REASON_GRADES)
    assert set(table["evidenceFigures"]) <= set(REASON_GRADES)
    # Every grade a reason can force has its word (`ok` is never reported).
    assert set(table["grades"]) == set(REASON_GRADES.values())


def test_the_apps_evidence_figures_name_numbers_the_server_gives():
    """A figure the app fills in (`{distance_to_household_m}`) is one of the grading's numbers
    or one the app works out from them: a renamed number would leave a blank in the sentence."""
    table = reasons_zh()
    named = {
        name
        for text in [*table["evidence"].values(), *table["evidenceFigures"].values()]
        for name in re.findall(r"\{(\w+)\}", text)
    }
    assert named - {"figures"} <= _every_detail_of_the_grading() | DERIVED_FIGURES
    assert "distance_to_household_m" in _every_detail_of_the_grading()  # the probe measures


def test_a_username_field_is_typed_as_written_not_capitalised():
    """A phone capitalised the first letter of `worker01` (iOS does unless told not to): the
    sign-in failed, or, before usernames differing only in case were refused, named another."""
    fields = [
        (page.name, tag)
        for page in sorted(WEB_SRC.rglob("*.html"))
        for tag in re.findall(r"<input[^>]*name=\"username\"[^>]*>", page.read_text())
    ]
    # The app's sign-in, the office pages' (partials/signin.html, put in each page by the
    # build), a new account's.
    assert len(fields) == 3
    for name, tag in fields:
        assert 'autocapitalize="none"' in tag and 'autocorrect="off"' in tag, (name, tag)


# --- leave in the app ----------------------------------------------------------------------------
def test_the_app_offers_leave_requests_and_decisions_to_the_roles_the_api_lets():
    """The form to request leave is offered to whom `request_leave` takes it from, the requests
    to decide to whom `decide_leave` lets decide (`Scope.edits_roster`); anyone else would be
    refused 403 after filling it in."""
    from api.models.users import ROLES
    from api.scope import Scope
    from api.services.rosters import SHIFT_ROLES

    def edits_roster(role: str) -> bool:
        scope = Scope(1, role, "110101001001", "110101", frozenset())
        return scope.edits_roster("110101001001")

    assert js_constant("LEAVE_REQUESTERS") == list(SHIFT_ROLES)
    assert js_constant("LEAVE_DECIDERS") == [role for role in ROLES if edits_roster(role)]


def test_the_leave_form_sends_exactly_the_fields_the_api_takes():
    from api.resources.rosters.schemas import LeaveCreateSchema

    html = (WEB_SRC / "app.html").read_text()
    form = re.search(r'<form id="leave-form">(.*?)</form>', html, re.S).group(1)
    assert set(re.findall(r'name="(\w+)"', form)) == set(LeaveCreateSchema().fields)
    reason = next(
        v.max for v in LeaveCreateSchema().fields["reason"].validators if hasattr(v, "max")
    )
    assert re.search(r'<textarea name="reason"[^>]*maxlength="(\d+)"', form).group(1) == str(reason)


def test_the_app_words_every_status_of_a_leave_in_both_languages():
    from api.models.rosters import LEAVE_STATUSES

    source = (WEB_SRC / "app.js").read_text()
    tables = re.findall(r"leaveStatuses: \{(.*?)\}", source)
    assert len(tables) == 2  # zh, en
    for table in tables:
        assert re.findall(r"(\w+):", table) == list(LEAVE_STATUSES)


def test_the_pages_name_every_care_tag_in_both_languages():
    """web/src/common.js CARE_TAGS (the roster page's cadence card, the register's tags and
    filter): a name per tag the API takes, in its order."""
    from api.models import CARE_TAGS

    source = (WEB_SRC / "common.js").read_text()
    table = re.search(r"export const CARE_TAGS = \{(.*?)\n\};", source, re.S).group(1)
    rows = re.findall(r'^\s*(\w+): \["([^"]+)", "([^"]+)"\],$', table, re.M)
    assert [tag for tag, _, _ in rows] == list(CARE_TAGS)
    assert all(zh and en and zh != en for _, zh, en in rows)


def test_the_pages_name_every_occupancy_in_both_languages():
    """web/src/common.js OCCUPANCIES (the register's page and the app's door form): a name per
    occupancy the API takes, in its order."""
    from api.models.households import OCCUPANCIES

    source = (WEB_SRC / "common.js").read_text()
    table = re.search(r"export const OCCUPANCIES = \{(.*?)\n\};", source, re.S).group(1)
    rows = re.findall(r'^\s*(\w+): \["([^"]+)", "([^"]+)"\],$', table, re.M)
    assert [occupancy for occupancy, _, _ in rows] == list(OCCUPANCIES)
    assert all(zh and en and zh != en for _, zh, en in rows)


def test_the_urgencies_offered_say_the_apis_default_deadlines():
    """The forms label each urgency with its deadline (一般（7天）) until the community's are
    read: the hours the API gives a community that set none, not a copy that drifts."""
    from api.services.tasks import DEFAULT_DEADLINE_HOURS

    source = (WEB_SRC / "common.js").read_text()
    table = re.search(r"DEFAULT_DEADLINE_HOURS = Object\.freeze\((\{.*?\})\)", source).group(1)
    shown = {k: float(v) for k, v in re.findall(r"(\w+): ([\d.]+)", table)}
    assert shown == {k: float(v) for k, v in DEFAULT_DEADLINE_HOURS.items()}


# --- the server's own notes on a task's steps, in Chinese (web/src/task_detail.js) -------------
def test_the_task_page_words_every_note_the_server_writes_in_english():
    """Why dispatch chose the assignee, and the tick's escalation at the deadline, are stored in
    English: the task's page said them so on the Chinese page. Every one has its Chinese, and
    none the server no longer writes."""
    from api.services.dispatch import DISPATCH_NOTES
    from api.services.tasks import DEADLINE_NOTE

    source = (WEB_SRC / "task_detail.js").read_text()
    table = re.search(r"export const DISPATCH_NOTES_ZH = (\{.*?\n\});\n", source, re.S).group(1)
    assert set(json.loads(table)) == {*DISPATCH_NOTES, DEADLINE_NOTE}


def test_the_task_page_words_every_note_the_server_writes_in_chinese_in_english_too():
    """A re-dispatch by 12345, a holder switched off or made an admin, a grid retired, contact
    details erased: the server writes these notes in Chinese, and the English page said them so."""
    from api.services import retention, tasks

    source = (WEB_SRC / "task_detail.js").read_text()
    table = re.search(r"export const NOTES_EN = (\{.*?\n\});\n", source, re.S).group(1)
    assert set(json.loads(table)) == {
        tasks.SWITCHED_OFF_NOTE,
        tasks.RESOLVED_HERE_NOTE,
        tasks.MADE_ADMIN_NOTE,
        tasks.TRANSFERRED_IN_NOTE,
        tasks.TRANSFERRED_OUT_NOTE,
        tasks.GRID_RETIRED_NOTE,
        retention.ERASED_NOTE,
    }
    assert f"({tasks.GRID_RETIRED_NOTE})$/" in source  # the move's note, after its grids


def test_the_roster_settings_form_sends_every_field_the_api_takes():
    """The window's slots (`a_slots`) among them: a field the form left out was reset to its
    default by every save (the PUT replaces the settings whole)."""
    from api.resources.rosters.schemas import RosterSettingsSchema

    js = (WEB_SRC / "roster_settings.js").read_text()
    body = re.search(r"function formBody\(\) \{.*?return \{(.*?)\n    \};", js, re.S).group(1)
    assert set(re.findall(r"^ {6}(\w+):", body, re.M)) == set(RosterSettingsSchema().fields)


def test_the_roster_settings_page_words_the_window_slots_refusals_in_chinese():
    from api.services.rosters import _slot_problems

    js = (WEB_SRC / "roster_settings.js").read_text()
    table = js[js.index("const MESSAGES_ZH") :]
    table = table[: table.index("\n];")]
    patterns = [re.compile(p) for p in re.findall(r"^\s*\[/(.+?)/,", table, re.M)]
    early, late = {"start": "08:00", "end": "16:30"}, {"start": "20:00", "end": "11:30"}
    said = _slot_problems([early, early, late], 2)
    assert len(said) == 3  # listed twice, out of order, more slots than a_min
    for text in said:
        assert any(p.search(text) for p in patterns), text
