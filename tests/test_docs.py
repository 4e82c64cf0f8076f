"""The README and docs/*.md name only files, tests and settings that exist."""

import ast
import fnmatch
import itertools
import re
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
_TEST_ONLY_SETTINGS = {"GRIDWORK_TEST_DATABASE_URL", "GRIDWORK_FUZZ_EXAMPLES"}


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
