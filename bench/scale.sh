#!/usr/bin/env bash
# bench/scale.sh -- issue 16's scaling table: the realistic workloads of bench/run.sh as the
# table grows. One database per server, grown to each size in turn (10,000, then 100,000,
# then 1,000,000 contacts); at each size, on each server:
#   POST /api/v1/consents            a new valid number per request (contact, consent, event)
#   POST /api/v1/contacts            a new number per request (the table grows under it)
#   GET  /api/v1/contacts/{number}   at random over the seeded contacts
#   GET  /api/v1/check?to=&scope=    at random over the seeded contacts
# and the server's RSS (VmRSS of /proc/PID/status) right after the random GET run.
# consentd is grown through its fastest durable API path, Octopush's batch contact/create
# (bench/seed_bulk.mjs, each contact in the list "bench_list" and opted in to it; its rate is
# printed), the peer directly with better-sqlite3 (bench/peers/fastify/seed.js, not measured).
# The new-number runs add their contacts on top of the seeded ones (the random reads only
# pick seeded ones). Same table format as bench/run.sh, into bench/results/STAMP-scale/.
# `make bench` runs it after run.sh and smpp.sh unless BENCH_SCALE=0.
#
# Environment (and BENCH_DURATION, BENCH_CONNS, BENCH_THREADS, BENCH_WARMUP, BENCH_TIMEOUT,
# BENCH_KEEP, BENCH_CHECK_SCOPE, BENCH_SEED_BATCH, CONSENTD, TMPDIR as in bench/run.sh):
#   BENCH_SCALE_SIZES="10000 100000 1000000"   the sizes, growing (at most 10,000,000)
#   BENCH_SCALE_1M=1     0 drops the sizes of 1,000,000 and more (the slow step: ~1 min of
#                        seeding and a database of ~1 GB)
#   BENCH_SCALE_ONLY=both   both | consentd | peer
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
PEER_DIR=$BENCH/peers/fastify
CONSENTD=${CONSENTD:-$ROOT/build/consentd}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
WARMUP=${BENCH_WARMUP:-3s}
TIMEOUT=${BENCH_TIMEOUT:-2s}
KEEP=${BENCH_KEEP:-0}
ONLY=${BENCH_SCALE_ONLY:-both}
CHECK_SCOPE=${BENCH_CHECK_SCOPE:-all}
SIZES=${BENCH_SCALE_SIZES:-10000 100000 1000000}
BENCH_TAG=bench-scale
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

case $ONLY in both | consentd | peer) ;; *) die "BENCH_SCALE_ONLY must be both, consentd or peer" ;; esac
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
if want consentd; then
    [[ $CONSENTD == /* ]] || CONSENTD=$ROOT/$CONSENTD
    [[ -x $CONSENTD ]] || die "$CONSENTD not found: build it first (make), or set BENCH_SCALE_ONLY=peer"
fi
list=()
prev=0
for s in $SIZES; do
    [[ $s =~ ^[0-9]+$ ]] && ((s > prev && s <= 10000000)) || die "BENCH_SCALE_SIZES must grow, each at most 10,000,000"
    [[ ${BENCH_SCALE_1M:-1} == 0 ]] && ((s >= 1000000)) && continue
    list+=("$s")
    prev=$s
done
((${#list[@]} > 0)) || die "no size left to run"
((${#list[@]} <= 8)) || die "at most 8 sizes (4 blocks of new numbers each, 37 blocks in all)"

peer_deps
workspace consentd-scale scale
want consentd && start_consentd
want peer && start_peer
if want consentd; then
    curl -fsS -o /dev/null -X PATCH "$C_URL/api/v1/settings" -H "Authorization: Bearer $C_KEY" \
        --json '{"rate_limit":{"limit":1000000,"window_seconds":1}}' || die "could not raise consentd's rate limit"
fi

# Blocks of new numbers (bench/lib.sh's block): step i takes 4i .. 4i+3, one per run.
seeded=0
i=0
declare -A RSS SEEDINFO
for size in "${list[@]}"; do
    blk=$((4 * i))
    if want consentd; then
        seed_consentd "$seeded" $((size - seeded)) "$(block "$blk") $(block $((blk + 1))) $(block $((blk + 2))) $(block $((blk + 3)))"
        SEEDINFO[$size]=$SEED_MSG
    fi
    want peer && seed_peer "$seeded" $((size - seeded))
    seeded=$size
    want consentd && new_run consentd "$C_URL" "$C_KEY" consents "$blk" $((blk + 1)) "$size-new"
    want peer && new_run peer "$P_URL" "$P_KEY" consents "$blk" $((blk + 1)) "$size-new"
    want consentd && new_run consentd "$C_URL" "$C_KEY" contacts $((blk + 2)) $((blk + 3)) "$size-newc"
    want peer && new_run peer "$P_URL" "$P_KEY" contacts $((blk + 2)) $((blk + 3)) "$size-newc"
    if want consentd; then
        rand_run consentd "$C_URL" "$C_KEY" contact "$size" "$size-rget"
        RSS[consentd-$size]=$(rss_kb "$C_PID")
    fi
    if want peer; then
        rand_run peer "$P_URL" "$P_KEY" contact "$size" "$size-rget"
        RSS[peer-$size]=$(rss_kb "$P_PID")
    fi
    want consentd && rand_run consentd "$C_URL" "$C_KEY" check "$size" "$size-rcheck" "$(check_scope "$C_GROUP")"
    want peer && rand_run peer "$P_URL" "$P_KEY" check "$size" "$size-rcheck" "$(check_scope "$P_GROUP")"
    i=$((i + 1))
done

# ---------------------------------------------------------------------------- table

rows() { # rows LABEL TAG
    local ep=$1 tag=$2
    if want consentd; then row "$ep" consentd "$RESULTS/consentd-$tag.txt"; fi
    if want peer; then row "$([[ $ONLY == both ]] || echo "$ep")" "$PEER_LABEL" "$RESULTS/peer-$tag.txt"; fi
    if [[ $ONLY == both ]]; then ratio_row "$RESULTS/consentd-$tag.txt" "$RESULTS/peer-$tag.txt"; fi
}
{
    echo "| endpoint | server | requests/s | p50 | p99 | timeouts | errors |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for size in "${list[@]}"; do
        n=$(fmt_int "$size")
        rows "$n contacts: \`POST /api/v1/consents\`, a new number each (durable)" "$size-new"
        rows "$n contacts: \`POST /api/v1/contacts\`, a new number each (durable)" "$size-newc"
        rows "$n contacts: \`GET /api/v1/contacts/{number}\`, random" "$size-rget"
        rows "$n contacts: \`GET /api/v1/check?to=&scope=$([[ $CHECK_SCOPE == list ]] && echo "group:{list}" || echo "$CHECK_SCOPE")\`, random" "$size-rcheck"
    done
    echo
    echo "| contacts seeded | $(want consentd && echo "consentd RSS after the GET load |")$(want peer && echo " peer RSS after the GET load |")"
    echo "| ---: |$(want consentd && echo " ---: |")$(want peer && echo " ---: |")"
    for size in "${list[@]}"; do
        echo "| $(fmt_int "$size") |$(want consentd && echo " $(fmt_mb "${RSS[consentd-$size]}") |")$(want peer && echo " $(fmt_mb "${RSS[peer-$size]}") |")"
    done
    echo
    echo "wrk 4 \`-t$THREADS -c$CONNS -d$DURATION --timeout $TIMEOUT\` ($(warm && echo "after a $WARMUP warm-up" || echo "no warm-up")) on the same" \
        "$(nproc)-core machine as the servers, $(date -u +%Y-%m-%d); SQLite on $FSTYPE, WAL, \`synchronous=FULL\`." \
        "One database per server grown through the sizes in turn; at each size the new-number POSTs run first (each" \
        "adds its new contacts on top of the seeded ones), then the random reads over the seeded contacts (each" \
        "opted in to one list scope, so \`scope=all\` checks answer 200 \`no_consent\`; BENCH_CHECK_SCOPE=list: the list's scope, \`opted_in\`). RSS: VmRSS of the server" \
        "process right after the random GET run (the peer: its one node process)." \
        "errors = non-2xx answers (a 404 too) + socket errors; timeouts = no answer within $TIMEOUT."
    if want consentd; then
        for size in "${list[@]}"; do echo "consentd grown to $(fmt_int "$size") through Octopush batches: ${SEEDINFO[$size]}."; done
    fi
} | tee "$RESULTS/table-scale.md"
for f in "$RESULTS"/consentd-*.txt "$RESULTS"/peer-*.txt; do
    [[ -f $f ]] || continue
    read -r _ _ _ to err < <(stats "$f")
    ((to + err == 0)) || say "warning: $(basename "$f" .txt): $to timeouts, $err errors (see the server log in ${RESULTS#"$ROOT"/})"
done
say "raw wrk output and table-scale.md in ${RESULTS#"$ROOT"/}"
