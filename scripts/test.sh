#!/usr/bin/env bash
# Set up everything and run the whole test suite (lint, migrations check, pytest).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_all
say "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check api geo push fixtures tests migrations bench
say "pytest"
exec .venv/bin/pytest -p no:cacheprovider "$@"
