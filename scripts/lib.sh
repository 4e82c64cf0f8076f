#!/usr/bin/env bash
# Shared setup for scripts/demo.sh and scripts/test.sh: packages, the venv, a PostGIS database.
# Every step checks before it acts, so running the scripts again is cheap and changes nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
LOCAL_PG_PORT="${GRIDWORK_LOCAL_PG_PORT:-54329}"
_APT_UPDATED=0

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "installing ${missing[*]}"
  if [ "$_APT_UPDATED" -eq 0 ]; then $SUDO apt-get update -qq; _APT_UPDATED=1; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

pg_version() {
  ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1
}

ensure_packages() {
  apt_install python3 python3-venv python3-dev build-essential ca-certificates
  if [ -z "$(pg_version)" ]; then
    # PostgreSQL 15 where the distribution has it, else its default version.
    if apt-cache show postgresql-15 >/dev/null 2>&1 || { $SUDO apt-get update -qq && _APT_UPDATED=1 \
        && apt-cache show postgresql-15 >/dev/null 2>&1; }; then
      apt_install postgresql-15 postgresql-client-15
    else
      apt_install postgresql postgresql-client
    fi
  fi
  apt_install "postgresql-$(pg_version)-postgis-3" postgresql-client
  # The PDF report's fonts, embedded in every PDF it makes (api/pdf_fonts.py): without them it
  # refuses to make a PDF rather than draw rare characters of names as boxes.
  apt_install fonts-liberation fonts-arphic-uming fonts-hanazono fonts-babelstone-han
}

ensure_venv() {
  local stamp=".venv/.gridwork-installed"
  local want
  want="$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

pg_ready() { # host port
  .venv/bin/python - "$1" "$2" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(host=sys.argv[1], port=int(sys.argv[2]), user="postgres", dbname="postgres",
                connect_timeout=3).close()
PY
}

start_local_cluster() {
  local bin="/usr/lib/postgresql/$(pg_version)/bin"
  local data="$ROOT/.data/pg"
  local run="$ROOT/.data/run"
  mkdir -p "$ROOT/.data"
  # pg_ctl refuses to run as root: the cluster belongs to the postgres user.
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    as=(runuser -u postgres --)
    if ! runuser -u postgres -- test -x "$ROOT/.data"; then
      data="/var/lib/postgresql/gridwork-$(echo "$ROOT" | sha256sum | cut -c1-8)/pg"
      run="$(dirname "$data")/run"
    fi
    mkdir -p "$data" "$run"
    chown -R postgres:postgres "$data" "$run"
    chmod 700 "$data"
  else
    mkdir -p "$data" "$run"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initialising a project-local PostgreSQL cluster in $data"
    "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! pg_ready 127.0.0.1 "$LOCAL_PG_PORT"; then
    say "starting the project-local PostgreSQL on 127.0.0.1:$LOCAL_PG_PORT"
    "${as[@]}" "$bin/pg_ctl" -D "$data" -w -l "$run/postgres.log" \
      -o "-p $LOCAL_PG_PORT -k $run -c listen_addresses=127.0.0.1" start >/dev/null
  fi
}

ensure_database_url() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL"
  elif pg_ready 127.0.0.1 5432; then
    export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/gridwork"
    say "using the local PostgreSQL on 127.0.0.1:5432"
  else
    start_local_cluster
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$LOCAL_PG_PORT/gridwork"
  fi
}

# The map and the workers' app: Node for the build, Chromium (and CJK fonts) for the e2e tests.
ensure_web() {
  # A Node that came with its own npm (e.g. from another apt source) is kept as it is.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi
  apt_install chromium fonts-wqy-microhei
  local stamp="web/dist/.built-from"
  local want
  # Every source file, those of web/src's folders (partials/) too, in one order.
  want="$( (cat web/package.json web/package-lock.json web/build.mjs
    find web/src -type f -print0 | LC_ALL=C sort -z | xargs -0 cat) | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  say "building the web assets (npm ci && npm run build in web/)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run build --silent)
  echo "$want" > "$stamp"
}

setup_all() {
  ensure_packages
  ensure_venv
  ensure_database_url
  ensure_web
}

# Stop at once when something already listens on host:port (a demo still running): before,
# a second run printed the first one's URLs and started a second push worker before gunicorn
# gave up on the port.
require_free_port() { # host port
  if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
    say "something already listens on $1:$2 (is the demo running?): stop it, or choose another port, e.g. PORT=8081"
    exit 1
  fi
}

# The API and the push worker side by side (scripts/demo.sh) until either ends or this script
# is asked to stop (Ctrl-C, SIGTERM, SIGHUP). Each runs in a process group of its own, so a
# Ctrl-C reaches only this script, which then stops both once with SIGTERM: the API finishes
# the requests it holds, the worker the round in flight (a second signal would stop it at
# once, mid-send). One that ends stops the other; both are waited for. Returns the API's
# status. Arguments: the worker's log file, then `gridwork serve`'s options.
run_api_and_worker() {
  local log="$1"
  shift
  local gridwork="${GRIDWORK_BIN:-.venv/bin/gridwork}"
  set -m
  "$gridwork" push-worker >"$log" 2>&1 &
  _GW_WORKER=$!
  "$gridwork" serve "$@" &
  _GW_API=$!
  set +m
  trap '_gw_stop' INT TERM HUP
  trap '_gw_stop' EXIT
  say "push worker running (pid $_GW_WORKER, log $log); API pid $_GW_API"
  while kill -0 "$_GW_API" 2>/dev/null && kill -0 "$_GW_WORKER" 2>/dev/null; do
    wait -n 2>/dev/null || true # one of them ended, or a signal came
  done
  _gw_stop
  local status=0
  wait "$_GW_API" 2>/dev/null || status=$?
  wait "$_GW_WORKER" 2>/dev/null || true
  trap - INT TERM HUP EXIT
  return "$status"
}

_GW_STOPPED=0
_gw_stop() {
  [ "$_GW_STOPPED" -eq 1 ] && return 0
  _GW_STOPPED=1
  kill -TERM "$_GW_API" "$_GW_WORKER" 2>/dev/null || true
}
