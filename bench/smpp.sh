#!/usr/bin/env bash
# bench/smpp.sh -- consent-gated sends through SMPP (issue 16): wrk POSTs /api/v1/messages,
# each to a contact picked at random among BENCH_SMPP_CONTACTS contacts seeded in bulk (the
# Octopush batch path, each opted in to the list "bench_list"; the send asks for that scope,
# so every request is checked against the ledger state, queued durably and answered 202).
# The delivery worker submits them over one SMPP transceiver link to the e2e SMSC simulator
# (node, npm `smpp`). The request log stays on (consentd's stderr goes to a file).
#
# Prints the HTTP table row (requests/s, p50, p99, timeouts, errors) and, from the SMSC's
# own count: the messages per second that reached it DURING the load (its count at the end
# of the wrk window minus its count at the start, over wrk's duration), the backlog at the
# end of the load (accepted, from the request log's 202s, minus consentd_outbox_submitted_total
# of GET /metrics: queued, not yet submitted; and accepted minus the SMSC's count: not yet at
# the SMSC), and how long the SMSC took after the load to receive every accepted message
# (the drain). consentd only: the fastify peer has no SMPP delivery.
#
# Environment:
#   BENCH_DURATION=10s          wrk -d
#   BENCH_CONNS=64              wrk -c
#   BENCH_THREADS=2             wrk -t
#   BENCH_TIMEOUT=2s            wrk --timeout
#   BENCH_WINDOW=500            SMPP window (outstanding submit_sm) of the link
#   BENCH_SMPP_CONTACTS=10000   opted-in contacts the sends go to (at random)
#   BENCH_DRAIN_MAX=300         seconds to wait for the drain before giving up
#   BENCH_KEEP=0                1 keeps the temporary directory (database, logs)
#   CONSENTD=build/consentd
#   TMPDIR                      where the database goes (a real disk, not tmpfs)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
PEER_DIR=$BENCH/peers/fastify
CONSENTD=${CONSENTD:-$ROOT/build/consentd}
[[ $CONSENTD == /* ]] || CONSENTD=$ROOT/$CONSENTD
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
TIMEOUT=${BENCH_TIMEOUT:-2s}
WINDOW=${BENCH_WINDOW:-500}
CONTACTS=${BENCH_SMPP_CONTACTS:-10000}
DRAIN_MAX=${BENCH_DRAIN_MAX:-300}
KEEP=${BENCH_KEEP:-0}
WARMUP=0
ONLY=consentd
BENCH_TAG=bench-smpp
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

[[ -x $CONSENTD ]] || die "$CONSENTD not found: build it first (make)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
workspace consentd-smpp smpp

[[ -d $ROOT/node_modules/smpp ]] || (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
node "$BENCH/smsc.mjs" >"$WORK/smsc.out" 2>"$WORK/smsc.log" &
SMSC=$!
PIDS+=("$SMSC")
for _ in $(seq 100); do grep -q '^port ' "$WORK/smsc.out" && break; sleep 0.1; done
SMSC_PORT=$(awk '/^port /{print $2; exit}' "$WORK/smsc.out")
[[ -n $SMSC_PORT ]] || { cat "$WORK/smsc.log" >&2; die "the SMSC simulator did not start"; }

C_LOGIN=bench@bench.example
C_DB="sqlite:$WORK/consentd.db"
C_KEY=$("$CONSENTD" account create bench --login "$C_LOGIN" --db "$C_DB" 2>"$WORK/consentd-migrate.log" | api_key)
[[ $C_KEY == cd_* ]] || { cat "$WORK/consentd-migrate.log" >&2; die "consentd account create printed no api_key"; }
C_PORT=$(free_port)
start_server consentd "$WORK/consentd.log" "$CONSENTD" serve --listen "127.0.0.1:$C_PORT" --db "$C_DB" \
    --transport smpp --smpp "smpp://bench:secret@127.0.0.1:$SMSC_PORT?window=$WINDOW"
C_URL="http://127.0.0.1:$C_PORT"

# Sends over smpp come from a registered sender of the account (issue 8 item 4).
curl -fsS -o /dev/null "$C_URL/api/v1/senders" -H "Authorization: Bearer $C_KEY" \
    --json '{"number":"+12125550100","default":true}' || die "could not register the sender"
curl -fsS -o /dev/null -X PATCH "$C_URL/api/v1/settings" -H "Authorization: Bearer $C_KEY" \
    --json '{"rate_limit":{"limit":1000000,"window_seconds":1}}' || die "could not raise the rate limit"
seed_consentd 0 "$CONTACTS"
[[ -n $C_GROUP ]] || die "the seeded contacts are in no list"
SCOPE=group:$C_GROUP

# smsc_count -> "N T_MS": the SMSC's own count, asked by SIGUSR1 (waits for its answer).
smsc_count() {
    local lines
    lines=$(wc -l <"$WORK/smsc.out")
    kill -USR1 "$SMSC"
    for _ in $(seq 200); do
        (($(wc -l <"$WORK/smsc.out") > lines)) && break
        sleep 0.01
    done
    awk '/^received /{n=$2; t=$3} END{printf "%d %.0f\n", n, t}' "$WORK/smsc.out"
}
submitted() {
    curl -fsS "$C_URL/metrics" | awk '/^consentd_outbox_submitted_total /{n=$2} END{print n+0}'
}

read -r before _ < <(smsc_count)
sub_before=$(submitted)
say "wrk -t$THREADS -c$CONNS -d$DURATION POST /api/v1/messages (scope $SCOPE, random over $(fmt_int "$CONTACTS") contacts)"
run_wrk "$RESULTS/consentd-smpp.txt" "$DURATION" "$C_URL" send_message.lua "$C_KEY" "$CONTACTS" "$SCOPE"
read -r at_end t_end < <(smsc_count)
sub_end=$(submitted)

requests=$(field "$RESULTS/consentd-smpp.txt" requests)
bad=$(field "$RESULTS/consentd-smpp.txt" status)
secs_us=$(field "$RESULTS/consentd-smpp.txt" duration_us)
accepted=$((requests - bad))
# wrk does not count the answers still in flight when it stops (up to one per connection):
# the request log does, so take the 202s it shows, once they are written.
sleep 0.3
logged=$(grep -c '"path":"/api/v1/messages","status":202' "$WORK/consentd.log" || true)
((logged >= accepted)) && accepted=$logged
during=$((at_end - before))
queued=$((accepted - (sub_end - sub_before)))
not_there=$((accepted - during))

# The drain: until every accepted message reached the SMSC, or its count stops growing.
last=$at_end
t_last=$t_end
still=0
deadline=$((SECONDS + DRAIN_MAX))
while ((last - before < accepted && SECONDS < deadline)); do
    sleep 0.2
    read -r now t_now < <(smsc_count)
    if ((now == last)); then
        ((++still >= 50)) && break # 10 s without progress
    else
        still=0
        last=$now
        t_last=$t_now
    fi
done
drained=$((last - before))
drain_s=$(awk -v a="$t_last" -v b="$t_end" 'BEGIN { printf "%.1f", (a - b) / 1000 }')

read -r rps p50 p99 to err < <(stats "$RESULTS/consentd-smpp.txt")
{
    echo "| consent-gated send over SMPP | server | requests/s | p50 | p99 | timeouts | errors |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    printf '| `POST /api/v1/messages`, random over %s opted-in contacts (durable, 202) | consentd | %s | %s | %s | %s | %s |\n' \
        "$(fmt_int "$CONTACTS")" "$(fmt_int "$rps")" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$(fmt_int "$to")" "$(fmt_int "$err")"
    echo
    echo "| at the SMSC simulator | value |"
    echo "| --- | ---: |"
    rate=$(awk -v d="$during" -v us="$secs_us" 'BEGIN { printf "%.0f", (us > 0 ? d / (us / 1e6) : 0) }')
    echo "| messages/s reaching the SMSC during the load (its own count over the wrk window) | $(fmt_int "$rate") msg/s ($(fmt_int "$during") of $(fmt_int "$accepted") accepted) |"
    echo "| backlog at the end of the load: accepted, not yet submitted | $(fmt_int "$queued") |"
    echo "| accepted, not yet at the SMSC at the end of the load | $(fmt_int "$not_there") |"
    if ((drained >= accepted)); then
        echo "| drain: the SMSC had every accepted message | $drain_s s after the load ($(fmt_int "$(awk -v n="$((drained - during))" -v s="$drain_s" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')") msg/s) |"
    else
        echo "| drain: **incomplete**, the SMSC has $(fmt_int "$drained") of $(fmt_int "$accepted") | gave up $drain_s s after the load |"
    fi
    echo
    echo "wrk 4 \`-t$THREADS -c$CONNS -d$DURATION --timeout $TIMEOUT\` on the same $(nproc)-core machine; consentd \`serve --transport smpp\`," \
        "one transceiver link, window $WINDOW, request log on; SQLite on $FSTYPE, WAL, \`synchronous=FULL\` (a 202 only once" \
        "the message is durably queued). Contacts seeded through Octopush's batch path: $SEED_MSG."
} | tee "$RESULTS/table-smpp.md"
((to + err == 0)) || say "warning: $to timeouts, $err errors (see the server log in ${RESULTS#"$ROOT"/})"
((drained >= accepted)) || die "the SMSC did not receive every accepted message"
