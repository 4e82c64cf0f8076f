#!/usr/bin/env bash
# Set up everything and run the gridwork API with the seeded demo district.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_all
# A signing key that survives restarts, so tokens stay valid. Phones are encrypted with
# GRIDWORK_DATA_KEY when set, else with the (logged) development key: set your own key before
# loading real residents' data, and keep it.
SECRETS="$ROOT/.data/secrets.env"
if [ ! -f "$SECRETS" ]; then
  mkdir -p "$ROOT/.data"
  umask 077
  {
    echo "GRIDWORK_SECRET_KEY=$(.venv/bin/gridwork security new-key)"
  } > "$SECRETS"
fi
set -a; source "$SECRETS"; set +a
# Without GRIDWORK_DATA_KEY the app starts only in development (on the development key).
export GRIDWORK_ENV="${GRIDWORK_ENV:-development}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
require_free_port "$HOST" "$PORT"
.venv/bin/gridwork db upgrade
.venv/bin/gridwork seed demo
BASE="http://$HOST:$PORT"
cat <<INFO

  gridwork is starting on $BASE
    API docs (Swagger UI)   $BASE/api/v1/docs
    OpenAPI document        $BASE/api/v1/openapi.json
    Grid-leader map         $BASE/map
    Workers' app            $BASE/app
    Accounts (office)       $BASE/accounts

  Demo accounts (password for all: $(.venv/bin/python -c 'from fixtures.demo import DEMO_PASSWORD; print(DEMO_PASSWORD)')):
$(.venv/bin/python -m fixtures.demo --accounts)

  Sign in:  curl -s -X POST $BASE/api/v1/auth/token -H 'Content-Type: application/json' \\
              -d '{"username": "<one of the above>", "password": "<the password>"}'

INFO
# Notifications are delivered by a separate worker; without FCM credentials it logs them.
export GRIDWORK_PUSH_BACKEND="${GRIDWORK_PUSH_BACKEND:-log}"
# Ctrl-C (or SIGTERM, SIGHUP) stops both, the API after its requests, the worker after its round.
run_api_and_worker "$ROOT/.data/push-worker.log" --host "$HOST" --port "$PORT"
