#!/usr/bin/env bash
# PromQL compatibility report: the harness in ../shared/promql-compat run against this
# checkout. Starts a reference Prometheus (dataset backfilled) and an empty `tsdb serve` on
# free ports, loads the dataset through remote write, compares, stops both.
#
#   scripts/promql_compat.sh                     # every query, all modes, failures grouped
#   scripts/promql_compat.sh --tier core -v      # extra arguments go to compare.py
#   scripts/promql_compat.sh --query 'rate(http_requests_total[5m])'
#
# PROMQL_COMPAT_DIR overrides where the harness is; KEEP=1 keeps the work directory.
# tests/e2e/test_promql_compat.py runs the same in CI with a pass-count floor.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
compat="${PROMQL_COMPAT_DIR:-$repo/../shared/promql-compat}"
[ -f "$compat/compare.py" ] || { echo "harness not found at $compat" >&2; exit 2; }
compat="$(cd "$compat" && pwd)"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work="$(mktemp -d "${TMPDIR:-/tmp}/promql-compat.XXXXXX")"
ref_port="$(free_port)"
tsdb_port="$(free_port)"
tsdb_pid=""

cleanup() {
  if [ -n "$tsdb_pid" ] && kill -0 "$tsdb_pid" 2>/dev/null; then
    kill -TERM "$tsdb_pid"
    wait "$tsdb_pid" 2>/dev/null || true
  fi
  bash "$compat/reference.sh" stop --port "$ref_port" --dir "$work/reference" --purge \
    >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bash "$compat/reference.sh" start --port "$ref_port" --dir "$work/reference" \
  --data "$work/dataset"

PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" python3 -m tsdb.cli serve \
  --data-dir "$work/tsdb-data" --listen "127.0.0.1:$tsdb_port" --retention 0 \
  --carbon-listen "" --carbon-pickle-listen "" \
  > "$work/tsdb.log" 2>&1 &
tsdb_pid=$!
for _ in $(seq 1 120); do
  curl -sf -o /dev/null "http://127.0.0.1:$tsdb_port/-/ready" && break
  kill -0 "$tsdb_pid" 2>/dev/null || { echo "tsdb serve exited:" >&2; cat "$work/tsdb.log" >&2; exit 1; }
  sleep 0.25
done

cd "$compat"
python3 load.py "http://127.0.0.1:$tsdb_port/api/v1/write" --data "$work/dataset"
status=0
python3 compare.py --ref "http://127.0.0.1:$ref_port" --target "http://127.0.0.1:$tsdb_port" \
  --queries public.txt --range --instant --metadata --list-unsupported "$@" || status=$?
exit "$status"
