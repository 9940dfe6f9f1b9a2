#!/usr/bin/env bash
# Pacer against its peers: a venv of its own (bench/peers/.venv) with Pacer installed editable
# and the peers pinned in requirements.txt, then the harness. Arguments go to the harness,
# e.g. bench/peers/run.sh --peers pacer,pgqueuer --drain-jobs 5000 --no-write
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -e "$root" -r "$here/requirements.txt"
"$root/scripts/ensure-postgres.sh"
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379
cd "$root"
exec "$venv/bin/python" "$here/harness.py" "$@"
