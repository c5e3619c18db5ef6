#!/usr/bin/env bash
# Run the Postman collection with newman against a live server started here:
# `python api.py --port 0` on a free port with its own temporary SQLite file,
# stopped again whatever happens. Exits with newman's status.
#
# Usage: postman/run-newman.sh [extra newman options, e.g. --folder Words]
# Environment: PYTHON (default .venv/bin/python, else python3),
#              STARTUP_TIMEOUT (seconds to wait for the server, default 120).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=python3
fi
startup_timeout="${STARTUP_TIMEOUT:-120}"

if ! command -v npm >/dev/null; then
    echo "run-newman: npm is needed (install Node.js 16 or later)" >&2
    exit 1
fi
if [[ ! -x "$here/node_modules/.bin/newman" ]]; then
    echo "run-newman: installing newman (npm ci)" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/wordcount-newman.XXXXXX")"
server_pid=""

# Called by the EXIT trap: stop the server, remove the temporary files.
# shellcheck disable=SC2317
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log="$workdir/server.log"
APP_SQLITE_PATH="$workdir/words.sqlite3" \
    "$python" api.py --host 127.0.0.1 --port 0 >"$log" 2>&1 &
server_pid=$!

url=""
deadline=$((SECONDS + startup_timeout))
while [[ -z "$url" ]]; do
    url="$(sed -n 's/.*serving on \(http:\/\/[^ ]*\).*/\1/p' "$log" | head -n 1)"
    [[ -n "$url" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run-newman: the server exited before serving; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run-newman: no 'serving on' line after ${startup_timeout}s;" \
             "the server's log:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "run-newman: server up at $url (pid $server_pid)" >&2

# The default model version serves from the start; the collection also
# checks that every version is AVAILABLE, so wait for the others to load
# (the KServe V2 server readiness is true once all versions are).
until curl -fs -o /dev/null --max-time 2 "$url/v2/health/ready"; do
    if ((SECONDS >= deadline)); then
        echo "run-newman: model versions not all loaded after" \
             "${startup_timeout}s; the server's log:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done

report="$workdir/newman-report.json"
status=0
"$here/node_modules/.bin/newman" run \
    "$here/wordcount.postman_collection.json" \
    --environment "$here/local.postman_environment.json" \
    --env-var "baseUrl=$url" \
    --working-dir "$root" \
    --reporters cli,json --reporter-json-export "$report" \
    --color off \
    "$@" || status=$?

# One summary line per count, from newman's own JSON report.
if [[ -s "$report" ]]; then
    node -e '
        const run = require(process.argv[1]).run;
        const s = run.stats;
        const line = (name, st) => console.log(
            "newman summary: " + name + ": " + st.total + " total, " +
            st.failed + " failed");
        line("requests", s.requests);
        line("assertions", s.assertions);
        line("test scripts", s.testScripts);
        console.log("newman summary: failures: " + run.failures.length);
    ' "$report"
fi
if ((status != 0)); then
    echo "run-newman: newman exited with status $status; server log" \
         "tail:" >&2
    tail -n 20 "$log" >&2
fi
exit "$status"
