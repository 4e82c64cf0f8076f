"""The README and docs/*.md name only files, tests and settings that exist; roles as the code."""

import ast
import fnmatch
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETTINGS = ROOT / "api" / "settings.py"

# `tests/api/test_x.py::test_y`, `test_x.py` (a test file named by its name alone), and paths of
# the source tree such as `api/privacy.py` or `bench/RESULTS.md`, inside backticks.
_FILE_REF = re.compile(r"`((?:[\w-]+/)*[\w-]+\.(?:py|md|mjs|sh))((?:::[\w*\[\]-]+)*)`")
# Settings gridwork reads itself; the test suite's own variables are read by tests/.
_SETTING = re.compile(r"\bGRIDWORK_[A-Z0-9_]+\b")
_TEST_ONLY_SETTINGS = {
    "GRIDWORK_TEST_DATABASE_URL",
    "GRIDWORK_FUZZ_EXAMPLES",
    "GRIDWORK_TEST_WORKERS",
}


def _tracked_files() -> list[Path]:
    skip = {".git", ".venv", "node_modules", "dist", ".data", "var"}
    return [
        p
        for p in ROOT.rglob("*")
        if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
    ]


def _resolve(ref: str, files: list[Path]) -> list[Path]:
    if (ROOT / ref).is_file():
        return [ROOT / ref]
    return [p for p in files if p.relative_to(ROOT).as_posix().endswith("/" + ref)]


def _names_defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def test_every_file_and_test_a_doc_cites_exists():
    files = _tracked_files()
    missing = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for ref, tests in _FILE_REF.findall(line):
                where = f"{doc.relative_to(ROOT)}:{number}"
                found = _resolve(ref, files)
                if not found:
                    missing.append(f"{where}: {ref}")
                    continue
                for name in filter(None, tests.split("::")):
                    pattern = name.split("[")[0]
                    defined = set().union(*(_names_defined(p) for p in found))
                    if not fnmatch.filter(defined, pattern):
                        missing.append(f"{where}: {ref}::{name}")
    assert missing == []


def test_the_readme_lists_exactly_the_settings_api_settings_reads():
    from api.settings import _ENV

    read = set(_ENV)
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Configuration", 1)[1]
    section = section.split("\n## ", 1)[0]
    listed = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", section))
    assert sorted(listed - read) == []
    assert sorted(read - listed) == []


def test_the_push_channels_read_only_settings_api_settings_maps():
    """push/settings.py reads its names from os.environ or the app's config: each must be one
    api/settings.py maps, or the README's table (checked against that module) misses it."""
    from api.settings import _ENV

    source = (ROOT / "push" / "settings.py").read_text(encoding="utf-8")
    assert sorted(set(re.findall(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]+)"', source)) - set(_ENV)) == []


def test_every_setting_a_doc_names_is_read():
    read = set(re.findall(r'"(GRIDWORK_[A-Z0-9_]+)"', SETTINGS.read_text()))
    named = {
        f"{doc.relative_to(ROOT)}: {name}"
        for doc in DOCS
        for name in _SETTING.findall(doc.read_text(encoding="utf-8"))
        if name not in read | _TEST_ONLY_SETTINGS
    }
    assert sorted(named) == []


# `GET /tasks/{id}`, `GET\|POST /users`, `POST /swaps/{id}/accept\|reject`, with or without
# /api/v1 and a query string; `<id>` is a path parameter too.
_METHOD = r"(?:GET|POST|PUT|PATCH|DELETE)"
_OPERATION = re.compile(rf"^({_METHOD}(?:\\?\|{_METHOD})*) (/[^\s?\[]*)")


def _operations(span: str) -> set[tuple[str, str]]:
    """The (method, path) pairs a backticked span such as `GET\\|POST /users?x=` names."""
    found = _OPERATION.match(span)
    if not found:
        return set()
    methods, path = found.groups()
    path = re.sub(r"\{[^}]*\}|<[^>]*>", "{}", path.removeprefix("/api/v1"))
    *head, last = path.split("/")
    paths = ["/".join([*head, alternative]) for alternative in re.split(r"\\?\|", last)]
    return {(method, p) for method in re.split(r"\\?\|", methods) for p in paths}


@pytest.fixture(scope="module")
def served_document() -> dict[tuple[str, str], set[str]]:
    """Every operation of the OpenAPI document the app serves, with its query parameters (no
    database is reached: the data key check is what would connect at start-up)."""
    from tests.factories import build_app

    app = build_app("postgresql://postgres@127.0.0.1:5432/gridwork_docs", DATA_KEY_CHECK=False)
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    return {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path.removeprefix("/api/v1"))): {
            parameter["name"]
            for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]
            if parameter["in"] == "query"
        }
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


@pytest.fixture(scope="module")
def served_operations(served_document) -> set[tuple[str, str]]:
    return set(served_document)


def test_the_readme_api_table_lists_every_served_operation_and_no_other(served_operations):
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## API\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    listed = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            for span in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
                listed |= _operations(span)
    assert sorted(served_operations - listed) == []
    assert sorted(listed - served_operations) == []


def test_every_api_operation_a_doc_names_is_served(served_operations):
    unserved = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for span in re.findall(r"`([^`]+)`", line):
                if re.match(rf"{_METHOD}(?:\\?\|{_METHOD})* /api/v1/", span):
                    for method, path in sorted(_operations(span) - served_operations):
                        unserved.append(f"{doc.relative_to(ROOT)}:{number}: {method} {path}")
    assert unserved == []


def _console_uses() -> list[tuple[str, str]]:
    """(where, use) for each `gridwork …` the docs show: a line of a code block, or a span in
    backticks; the comment after `#` is not part of it."""
    uses = []
    for doc in DOCS:
        in_block = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            in_block ^= line.startswith("```")
            spans = re.findall(r"`(gridwork [^`]+)`", line)
            if in_block and line.startswith("gridwork "):
                spans.append(line.split("  #", 1)[0])
            uses += [(f"{doc.relative_to(ROOT)}:{number}", span) for span in spans]
    return uses


def test_every_gridwork_command_and_option_the_docs_show_exists_with_its_default():
    import click

    from api.cli import main

    wrong = []
    for where, use in _console_uses():
        # `gridwork security new-key | encrypt [--batch 1000]`: two commands of one group.
        first, *others = use.split(" | ")
        words = first.split()[1:]
        path = list(itertools.takewhile(lambda w: re.fullmatch(r"[a-z][a-z-]*", w), words))
        alternatives = [(path, first)] + [([*path[:-1], o.split()[0]], o) for o in others]
        for path, text in alternatives:
            command = main
            for word in path:
                if not isinstance(command, click.Group) or word not in command.commands:
                    wrong.append(f"{where}: no command `gridwork {' '.join(path)}`")
                    break
                command = command.commands[word]
            else:
                params = {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}
                for option in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", text):
                    if option not in params:
                        wrong.append(f"{where}: `gridwork {' '.join(path)}` has no {option}")
                for option, shown in re.findall(r"\[(--[a-z][a-z0-9-]*) (\d[\d,]*)\]", text):
                    default = params.get(option) and params[option].default
                    if option in params and str(default) != shown.replace(",", ""):
                        wrong.append(f"{where}: {option} defaults to {default}, not {shown}")
    assert wrong == []


def test_every_migration_a_doc_cites_exists():
    numbers = {p.name.split("_")[1] for p in (ROOT / "migrations" / "versions").glob("*_*.py")}
    # "migration 0040", "migrations 0016, 0017", "Migrations 0017 to 0023", "(0011)" after one.
    cited = re.compile(r"\b[Mm]igrations? (\d{4}(?:(?:, | and | to )\d{4})*)")
    missing = [
        f"{doc.relative_to(ROOT)}:{number}: {cite}"
        for doc in DOCS
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        for group in cited.findall(line)
        for cite in re.findall(r"\d{4}", group)
        if cite not in numbers
    ]
    assert missing == []


def test_the_audit_retention_floor_the_docs_state_is_the_one_purge_audit_enforces():
    from api.services.audit import MIN_RETENTION

    # "kept at least N days (`gridwork purge-audit` …", "refuses anything under N days", "the
    # floor is N days (`audit.MIN_RETENTION`; `purge-audit` …", "refuses any `N` below N".
    floor = re.compile(r"(?:at least|under|below|floor is) (\d+)\b(?! MB)")
    stated = [
        f"{doc.relative_to(ROOT)}:{number}: {days}"
        for doc in DOCS
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        if "purge-audit" in line
        for days in floor.findall(line)
        if int(days) != MIN_RETENTION.days
    ]
    assert stated == []


def test_every_setting_default_a_doc_states_is_the_default():
    """`GRIDWORK_PUSH_LEASE_SECONDS` (120), `GRIDWORK_REFRESH_TOKEN_DAYS`, 30 days: the number
    right after a setting's name is its default in api/settings.Config."""
    from api.settings import _ENV, Config

    stated = re.compile(r"`(GRIDWORK_[A-Z0-9_]+)`(?: \(|, )(\d[\d,]*(?:\.\d+)?)\b")
    wrong = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for name, shown in stated.findall(line):
                default = getattr(Config, _ENV[name][0]) if name in _ENV else None
                if default is None or float(shown.replace(",", "")) != float(default):
                    wrong.append(f"{doc.relative_to(ROOT)}:{number}: {name} {shown} ({default})")
    assert wrong == []


def test_every_query_parameter_a_doc_names_is_one_its_operation_reads(served_document):
    """`GET /swaps?status=&worker=&week=`: each name is a query parameter of that operation
    (of one of them, for `GET\\|POST /leaves?worker=…`, whose POST reads none)."""
    unread = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for span in re.findall(r"`([^`]+)`", line):
                query = re.match(rf"{_METHOD}(?:\\?\|{_METHOD})* /[^\s?\[]*\[?\?(\S*)", span)
                if not query:
                    continue
                read = set().union(*(served_document.get(op, set()) for op in _operations(span)))
                for name in re.findall(r"(?:^|[&|?])([a-z_]+)=", query.group(1)):
                    if name not in read:
                        unread.append(f"{doc.relative_to(ROOT)}:{number}: {span} ({name})")
    assert unread == []


# --- who may call what: the docs' roles columns against the matrix and the code --------------
# `tests/api/test_matrix.py` holds, for every route, how each kind of caller is answered (and
# checks it against the app); these tests hold the docs' "Who" columns to that matrix, without
# a database. Its four callers inside grid A1 stand for the four roles.
_CALLER_OF_ROLE = {
    "worker": "worker_a1",
    "grid_leader": "leader_a",
    "community_admin": "admin_a",
    "district_viewer": "viewer_110101",
}
_ROLE_WORDS = {
    "worker": "worker",
    "requester": "worker",  # of a swap: a worker or a leader asked for it; a worker here
    "leader": "grid_leader",
    "admin": "community_admin",
    "viewer": "district_viewer",
}
# Phrases naming every role that sees the thing (scope decides which rows: a 404 outside it).
_EVERYONE = ("anyone who sees the community", "any signed-in user", "see Scope")
# `the shift's worker`, `the other worker`, `the swap's two workers`, `the requester`: a role
# on a condition the matrix's one target may not meet. `the worker's community` names none.
_ROLE = re.compile(r"\b(the\s+(?:[\w']+\s+){0,2})?(worker|requester|leader|admin|viewer)s?\b(?!')")


@dataclass(frozen=True)
class _Who:
    """What a "Who" cell says of one operation: no sign-in needed, the roles let in
    unconditionally, and the roles let in on a condition (their own shift, the other worker)."""

    public: bool = False
    roles: frozenset[str] = frozenset()
    conditional: frozenset[str] = frozenset()


def _read_who(text: str) -> _Who | None:
    """One clause of a "Who" cell, or None when it says nothing this check can read."""
    if "no sign-in" in text:
        return _Who(public=True, roles=frozenset(_CALLER_OF_ROLE))  # the token is the key
    if any(phrase in text for phrase in _EVERYONE):
        return _Who(roles=frozenset(_CALLER_OF_ROLE))
    roles, conditional = set(), set()
    for the, word in _ROLE.findall(text):
        (conditional if the else roles).add(_ROLE_WORDS[word])
    if not roles | conditional:
        return None
    return _Who(roles=frozenset(roles), conditional=frozenset(conditional - roles))


def _who_by_method(cell: str) -> dict[str, str]:
    """`GET: see Scope; PATCH: leader, admin` → {"GET": …, "PATCH": …}; a cell without methods
    → {"*": cell}. A `;` not followed by a method continues the clause before it."""
    said: dict[str, str] = {}
    method = "*"
    for part in cell.split(";"):
        found = re.match(rf"\s*({_METHOD}): (.*)", part)
        if found:
            method, part = found.groups()
            said[method] = part
        else:
            said[method] = f"{said[method]};{part}" if method in said else part
    return said


def _matrix_lines() -> dict[tuple[str, str], object]:
    from tests.api.test_matrix import MATRIX

    lines = {}
    for key, line in MATRIX.items():
        method, rule = key.split(" ", 1)
        lines[(method, re.sub(r"<[^>]*>", "{}", rule.removeprefix("/api/v1")))] = line
    return lines


def _let_in(expected) -> bool:
    """Whether the matrix's answer lets the caller in: served, or refused only by the state of
    the thing (409, 422), not by who asks (401, 403, 404)."""
    return expected not in (401, 403, 404)


def _table(doc: Path, header: str) -> list[list[str]]:
    """The cells of each row of the table whose header row starts with `header` (indented or
    not; `\\|` inside a cell is no border)."""
    rows, inside = [], False
    for line in doc.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if re.sub(r"\s+", " ", line).startswith(header):
            inside = True
            continue
        if inside and line.startswith("|"):
            if not line.startswith("| ---") and not line.startswith("|---"):
                cells = re.split(r"(?<!\\)\|", line.strip("|"))
                rows.append([cell.strip() for cell in cells])
        elif inside:
            break
    assert rows, f"no table {header!r} in {doc.relative_to(ROOT)}"
    return rows


def test_the_roster_api_tables_who_column_names_the_roles_the_matrix_lets_in():
    """docs/roster.md's API table: each operation's "Who" names every role the matrix test lets
    in (a 2xx, or a 409 / 422 of the thing's state) and no role it refuses (401, 403, 404),
    unless the cell names that role on a condition (`the shift's worker`, `the other worker`).
    `as above` and `as for cancel` repeat another row's cell. Lists answered to everyone signed
    in (each sees their rows) are not refusals: which rows, the matrix does not say."""
    from tests.api.test_matrix import SIGNED_IN

    lines = _matrix_lines()
    wrong = []
    cells: dict[str, dict[str, str]] = {}  # the cell of each row, by its last path segment
    previous: dict[str, str] = {}
    for first, who_cell, _what in _table(ROOT / "docs" / "roster.md", "| Method and path | Who |"):
        operations = set().union(*(_operations(s) for s in re.findall(r"`([^`]+)`", first)))
        said = _who_by_method(who_cell.replace("\\|", "|"))
        reference = re.fullmatch(r"as (?:above|for (\w+))(?: \(.*\))?", said.get("*", ""))
        if reference:
            said = previous if reference.group(1) is None else cells[reference.group(1)]
        previous = said
        for method, path in sorted(operations):
            cells[path.rsplit("/", 1)[-1]] = said
            where = f"docs/roster.md: {method} {path}"
            text = said.get(method, said.get("*"))
            who = _read_who(text) if text else None
            line = lines.get((method, path))
            if who is None or line is None:
                wrong.append(f"{where}: " + ("no line in MATRIX" if who else f"who? {text!r}"))
                continue
            if method == "GET" and line.expect is SIGNED_IN:
                continue
            if who.public != _let_in(line.expect["anonymous"]):
                wrong.append(f"{where}: public is {not who.public} in the matrix")
            let_in = {r for r, caller in _CALLER_OF_ROLE.items() if _let_in(line.expect[caller])}
            for role in sorted(let_in - who.roles - who.conditional):
                wrong.append(f"{where}: {role} is let in, the doc does not say so")
            for role in sorted(who.roles - let_in):
                wrong.append(f"{where}: {role} is refused, the doc says it may")
    assert not wrong, "\n".join(wrong)


def test_the_coverage_reports_role_table_refuses_whom_the_matrix_refuses():
    """docs/report.md: the roles that may ask for a coverage report (a 403 named in the cell:
    refused) are those `GET /reports/coverage` lets in, in the matrix test."""
    line = _matrix_lines()[("GET", "/reports/coverage")]
    words = {"worker": "worker", "grid leader": "grid_leader"}
    words |= {"community admin": "community_admin", "district viewer": "district_viewer"}
    rows = _table(ROOT / "docs" / "report.md", "| role | may ask for | sees |")
    said = {words[role]: "403" not in asks for role, asks, _sees in rows}
    matrix = {role: _let_in(line.expect[caller]) for role, caller in _CALLER_OF_ROLE.items()}
    assert said == matrix


def test_the_security_matrix_table_names_each_caller_and_the_refusals_of_its_reads():
    """docs/security.md's table of callers: one row per caller of the matrix test; the codes
    each row's reads cell names are those the matrix answers that caller on reads of A1's
    records (every GET but the static files and the shapes answered alike in the community:
    own data, lists, community settings); the district viewer of A1 writes nothing but its own
    account's things (devices, inbox, password), as its row says."""
    from tests.api.test_matrix import COMMUNITY_READ, MATRIX, PUBLIC, ROLES, SIGNED_IN, UNIFORM

    callers = {
        "anonymous": "anonymous",
        "worker of A1": "worker_a1",
        "grid leader of A1, A2": "leader_a",
        "community admin of A": "admin_a",
        "district viewer of 110101": "viewer_110101",
        "worker of A2 (same community)": "worker_a2",
        "community admin of B": "admin_b",
        "district viewer of 110102": "viewer_110102",
    }
    rows = _table(ROOT / "docs" / "security.md", "| Caller | Reads of A1's records |")
    assert sorted(callers[row[0]] for row in rows) == sorted(ROLES)
    alike = [PUBLIC, SIGNED_IN, COMMUNITY_READ, UNIFORM]
    reads = [
        line
        for key, line in MATRIX.items()
        if key.startswith("GET /api/") and not any(line.expect is shape for shape in alike)
    ]
    for caller, read_cell, _writes, _sees in rows:
        role = callers[caller]
        refused = {line.expect[role] for line in reads} - {"ok"}
        named = {int(code) for code in re.findall(r"\b4\d\d\b", read_cell)}
        assert (caller, named) == (caller, refused)
    viewer_writes = [
        key
        for key, line in MATRIX.items()
        if not key.startswith("GET ")
        and line.expect is not SIGNED_IN
        and line.expect is not PUBLIC
        and line.expect["viewer_110101"] == "ok"
    ]
    viewer_row = next(row for row in rows if callers[row[0]] == "viewer_110101")
    assert "read-only" in viewer_row[2]
    assert viewer_writes == []


def test_the_task_lifecycle_tables_by_column_names_who_the_code_lets_act():
    """docs/tasks-and-push.md's lifecycle: each action's "by" is whom `tasks.may_take` lets take
    it (`move`: `Scope.require_task_mover`; the deadline: the matrix test), and its "from" the
    statuses the code takes it from. "leader" is the grid's leader or the community admin, as
    the doc defines it; a grid leader merely holding the grid, another worker of it and a
    district viewer are in no "by"."""
    from api import errors
    from api.models import Grid, Task
    from api.scope import Scope
    from api.services import tasks

    community = "110101001001"
    grid = Grid(id=1, code=community + "001", community_code=community, leader_id=2)
    task = Task(id=1, grid_id=1, assignee_id=1, created_by_id=9)
    held = frozenset({1})
    callers = {
        "assignee": Scope(1, "worker", community, community[:6], held),
        "leader": Scope(2, "grid_leader", community, community[:6], held),
        "admin": Scope(3, "community_admin", community, community[:6], frozenset()),
        "holder": Scope(4, "grid_leader", community, community[:6], held),
        "worker": Scope(5, "worker", community, community[:6], held),
        "viewer": Scope(6, "district_viewer", None, community[:6], frozenset()),
    }

    def movers() -> set[str]:
        let = set()
        for name, scope in callers.items():
            try:
                scope.require_task_mover(grid)
            except errors.Forbidden:
                continue
            let.add(name)
        return let

    deadline = _matrix_lines()[("PUT", "/tasks/{}/deadline")]
    matrix = {"assignee": "worker_a1", "leader": "leader_a", "admin": "admin_a"}
    by_code = {
        action: {name for name, s in callers.items() if tasks.may_take(s, task, grid, action)}
        for action in [*tasks.TRANSITIONS, "assign"]
    }
    by_code["move"] = movers()
    by_code["deadline"] = {n for n, c in matrix.items() if _let_in(deadline.expect[c])}
    from_code = {action: set(rules) for action, rules in tasks.TRANSITIONS.items()}
    from_code |= {"assign": set(tasks.REASSIGNABLE), "move": set(tasks.REASSIGNABLE)}
    from_code["deadline"] = set(tasks.OPEN_STATUSES)
    words = {"assignee": {"assignee"}, "leader": {"leader", "admin"}, "admin": {"admin"}}
    doc = ROOT / "docs" / "tasks-and-push.md"
    by_doc, from_doc = {}, {}
    for action, from_, _to, by in _table(doc, "| action | from | to | by |"):
        action = re.match(r"[*(]*(\w+)", action).group(1)
        if by == "the system":
            continue
        by_doc[action] = set().union(*(words[w] for w in re.findall(r"[a-z]+", by) if w in words))
        from_doc[action] = set(re.findall(r"\w+", re.sub(r"\([^)]*\)", "", from_)))
    assert by_doc == by_code
    assert from_doc == from_code
