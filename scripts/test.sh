#!/usr/bin/env bash
# Set up everything and run the whole test suite (lint, migrations check, pytest).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_all
say "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check api geo push fixtures tests migrations bench
say "pytest"
# One worker per core (GRIDWORK_TEST_WORKERS to change; 0 runs in this process), each with its
# own databases; tests are handed out one by one as workers free up (worksteal).
exec .venv/bin/pytest -p no:cacheprovider -n "${GRIDWORK_TEST_WORKERS:-auto}" --dist worksteal "$@"
