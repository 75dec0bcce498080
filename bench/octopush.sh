#!/usr/bin/env bash
# bench/octopush.sh -- issue 11: Octopush batch contact creation, durable (a 201 only once its
# commit is on disk). Starts consentd on a fresh database, then bench/octopush.mjs POSTs
# /v1/public/contact/create with batches of new numbers into one list with a tag (each
# contact: an upsert, a list membership and a hash-chained group opt-in event) and prints
# contacts/s. The goal is 100,000 contacts/s in batches of 1,000.
#
# Environment:
#   OCTO_DURATION=10   seconds
#   OCTO_BATCH=1000    contacts per call
#   OCTO_CONNS=8       concurrent keep-alive connections
#   OCTO_FRESH=1       1: every number new (added); 0: the same numbers again (updated)
#   CONSENTD=build/consentd
#   TMPDIR             where the database goes (a real disk: on tmpfs fsync costs nothing)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONSENTD=${CONSENTD:-$ROOT/build/consentd}
[[ $CONSENTD == /* ]] || CONSENTD=$ROOT/$CONSENTD
[[ -x $CONSENTD ]] || { echo "bench: $CONSENTD not found: build it first (make)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/consentd-octopush.XXXXXX")
PID=
cleanup() {
    if [[ -n $PID ]]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

DB=sqlite:$WORK/consentd.db
LOGIN=bench@octopush.example
KEY=$("$CONSENTD" account create bench --login "$LOGIN" --db "$DB" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).api_key))')
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$CONSENTD" serve --listen "127.0.0.1:$PORT" --db "$DB" 2>"$WORK/consentd.log" >/dev/null &
PID=$!
for _ in $(seq 100); do
    grep -q '"listening"' "$WORK/consentd.log" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/consentd.log" >&2; exit 1; }
    sleep 0.1
done

node "$ROOT/bench/octopush.mjs" --url "http://127.0.0.1:$PORT" --login "$LOGIN" --key "$KEY" \
    --duration "${OCTO_DURATION:-10}" --batch "${OCTO_BATCH:-1000}" --conns "${OCTO_CONNS:-8}" \
    --fresh "${OCTO_FRESH:-1}"
"$CONSENTD" ledger verify --db "$DB" >/dev/null || { echo "bench: ledger verify failed" >&2; exit 1; }
