#!/usr/bin/env bash
# bench/smpp.sh -- consent-gated sends through SMPP: wrk POSTs /api/v1/messages to 1000
# opted-in contacts (each request is checked against the ledger state, queued durably and
# answered 202), the delivery worker submits them over one SMPP transceiver link to the
# e2e SMSC simulator (node, npm `smpp`). Prints the HTTP rate and the rate at which
# messages reached the SMSC, measured from its own count.
#
#   BENCH_DURATION=10s BENCH_CONNS=64 BENCH_THREADS=2 BENCH_WINDOW=50 CONSENTD=build/consentd
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONSENTD=${CONSENTD:-$ROOT/build/consentd}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
WINDOW=${BENCH_WINDOW:-50}
say() { printf '%s\n' "bench-smpp: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/consentd-smpp.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[[ -d $ROOT/node_modules/smpp ]] || (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
node "$ROOT/bench/smsc.mjs" >"$WORK/smsc.out" 2>"$WORK/smsc.err" &
SMSC=$!
pids+=("$SMSC")
for _ in $(seq 100); do grep -q '^port ' "$WORK/smsc.out" && break; sleep 0.1; done
SMSC_PORT=$(awk '/^port /{print $2; exit}' "$WORK/smsc.out")
[[ -n $SMSC_PORT ]] || { say "the SMSC simulator did not start"; cat "$WORK/smsc.err" >&2; exit 1; }

DB="sqlite:$WORK/consentd.db"
KEY=$("$CONSENTD" account create bench --db "$DB" 2>/dev/null | sed -n 's/.*"api_key": "\([^"]*\)".*/\1/p')
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$CONSENTD" serve --listen "127.0.0.1:$PORT" --db "$DB" --quiet --transport smpp \
    --smpp "smpp://bench:secret@127.0.0.1:$SMSC_PORT?window=$WINDOW" 2>"$WORK/consentd.log" &
pids+=("$!")
for _ in $(seq 100); do grep -q '"listening"' "$WORK/consentd.log" && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT"

# Sends over smpp come from a registered sender of the account (issue 8 item 4).
curl -sf "$URL/api/v1/senders" -H "Authorization: Bearer $KEY" \
    --json '{"number":"+12125550100","default":true}' >/dev/null ||
    { say "could not register the sender"; exit 1; }
say "seeding 1000 opted-in contacts"
node "$ROOT/bench/seed.cjs" --url "$URL" --key "$KEY" --set a --state opted_in >/dev/null

count() {
    kill -USR1 "$SMSC"
    sleep 0.2
    awk '/^received /{n=$2} END{print n+0}' "$WORK/smsc.out"
}
before=$(count)
t0=$(date +%s.%N)
say "wrk -t$THREADS -c$CONNS -d$DURATION POST /api/v1/messages"
LUA_PATH="$ROOT/bench/?.lua;;" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
    -s "$ROOT/bench/send_message.lua" "$URL" -- "$KEY" "$THREADS" >"$WORK/wrk.out"
accepted=$(awk '/^Requests\/sec/{print $2}' "$WORK/wrk.out")
p50=$(awk '$1=="50%"{print $2}' "$WORK/wrk.out")
p99=$(awk '$1=="99%"{print $2}' "$WORK/wrk.out")
non2xx=$(awk '/Non-2xx/{print $4}' "$WORK/wrk.out")
total=$(awk '/requests in/{print $1}' "$WORK/wrk.out")
# Wait until the worker has drained the outbox (the SMSC count stops growing).
last=-1
for _ in $(seq 600); do
    now=$(count)
    [[ $now == "$last" ]] && break
    last=$now
    sleep 0.3
done
t1=$(date +%s.%N)
delivered=$((last - before))
python3 - "$accepted" "$p50" "$p99" "${non2xx:-0}" "$total" "$delivered" "$t0" "$t1" "$WINDOW" <<'PY'
import sys
acc, p50, p99, bad, total, delivered, t0, t1, window = sys.argv[1:]
secs = float(t1) - float(t0)
print("| consent-gated send over SMPP | value |")
print("| --- | ---: |")
print(f"| HTTP POST /api/v1/messages accepted (202) | {float(acc):,.0f} req/s (p50 {p50}, p99 {p99}, non-2xx {bad}) |")
print(f"| messages that reached the SMSC | {int(delivered):,} of {int(total):,} in {secs:.1f} s = {int(delivered)/secs:,.0f} msg/s |")
print(f"| SMPP window | {window} outstanding submit_sm, one transceiver link |")
PY
