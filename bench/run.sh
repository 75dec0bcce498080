#!/usr/bin/env bash
# bench/run.sh -- `make bench`: wrk against consentd and a fastify + better-sqlite3 peer,
# side by side in one run, on this machine. Prints a Markdown table (requests/s, p50, p99,
# timeouts, errors, consentd/peer ratio) ready to paste into README.md, and keeps the raw
# wrk output and the table under bench/results/ (git-ignored).
#
# Endpoints (both servers, same API key scheme, same JSON, SQLite WAL + synchronous=FULL):
#   POST /api/v1/consents            durable: acknowledged only once committed; every
#                                    request flips one of 1000 numbers' state (one event each)
#   GET  /api/v1/contacts/{number}   rotating over the same 1000 seeded contacts
#   POST /v1/contacts-opt-in/create  issue 10, ProTexting: durable, a new number every request
#                                    (contact, group, pending event, flow, CTA queued)
# and the realistic workloads of issue 16 (BENCH_REAL=1), after the runs above:
#   POST /api/v1/consents            a NEW valid number on every request (new contact, consent,
#                                    ledger event, durable), unique across threads and runs
#   GET  /api/v1/contacts/{number}   at random over BENCH_CONTACTS seeded contacts, each wrk
#   GET  /api/v1/check?to=&scope=    thread with its own PRNG (a 404 would count as an error)
# consentd is seeded through its fastest durable API path, Octopush's batch contact/create
# (bench/seed_bulk.mjs: each contact in the list "bench_list", opted in to group:<list>);
# the peer directly with better-sqlite3 (bench/peers/fastify/seed.js), the same contacts.
# bench/scale.sh (make bench, BENCH_SCALE=1) repeats them at 10k, 100k and 1M contacts.
#
# Environment:
#   BENCH_DURATION=10s   wrk -d for each measured run
#   BENCH_CONNS=64       wrk -c (open connections)
#   BENCH_THREADS=2      wrk -t
#   BENCH_WARMUP=3s      unmeasured run before each measured one (0 to skip)
#   BENCH_TIMEOUT=2s     wrk --timeout: slower answers count as timeouts
#   BENCH_ONLY=both      both | consentd | peer
#   BENCH_OMEDA=1        0 skips the Omeda opt queue run (consentd only; issue 12)
#   BENCH_PROTEXTING=1   0 skips the ProTexting opt-in run
#   BENCH_KEEP=0         1 keeps the temporary directory (databases, server logs)
#   BENCH_OCTOPUSH=0     1 also runs bench/octopush.sh (issue 11: contacts/s in Octopush batches)
#   BENCH_REAL=1         0 skips the realistic workloads of issue 16
#   BENCH_CONTACTS=100000  contacts seeded for the random reads (at most 10,000,000)
#   BENCH_CHECK_SCOPE=all  the scope of the random GET /api/v1/check: all (answers no_consent:
#                        the seeded contacts are opted in to their list only), or list (the
#                        list's group:ID on each server: answers opted_in, two consent lookups)
#   BENCH_SEED_BATCH=5000  contacts per Octopush call when seeding consentd (at most 10,000)
#   BENCH_SCALE=1        (make bench) 0 skips bench/scale.sh, the scaling table (its own
#                        variables are in its header: BENCH_SCALE_SIZES, BENCH_SCALE_1M, ...)
#   CONSENTD=build/consentd
#   TMPDIR               where the temporary directory goes (must be a real disk, not tmpfs,
#                        or synchronous=FULL measures nothing)
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
ONLY=${BENCH_ONLY:-both}
KEEP=${BENCH_KEEP:-0}
PROTEXTING=${BENCH_PROTEXTING:-1}
REAL=${BENCH_REAL:-1}
CONTACTS=${BENCH_CONTACTS:-100000}
CHECK_SCOPE=${BENCH_CHECK_SCOPE:-all}

BENCH_TAG=bench
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

case $ONLY in both | consentd | peer) ;; *) die "BENCH_ONLY must be both, consentd or peer" ;; esac

command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v node >/dev/null || die "node is not installed (the peer and the seeding need it)"
if want consentd; then
    [[ $CONSENTD == /* ]] || CONSENTD=$ROOT/$CONSENTD
    [[ -x $CONSENTD ]] || die "$CONSENTD not found: build it first (make), or set BENCH_ONLY=peer"
fi
((THREADS >= 1 && CONNS >= THREADS)) || die "need BENCH_THREADS >= 1 and BENCH_CONNS >= BENCH_THREADS"
[[ $CONTACTS =~ ^[0-9]+$ ]] && ((CONTACTS >= 1 && CONTACTS <= 10000000)) || die "BENCH_CONTACTS must be 1 .. 10,000,000"

peer_deps
workspace consentd-bench

want consentd && start_consentd
want peer && start_peer

# ---------------------------------------------------------------------------- seed

if want consentd; then
    out=$(node "$BENCH/seed.cjs" --url "$C_URL" --key "$C_KEY" --set a --state opted_in --shape "$WORK/consentd.shape") ||
        die "seeding consentd failed (the end of its log will be in ${RESULTS#"$ROOT"/}/consentd.log)"
    say "consentd: $out"
fi
if want peer; then
    out=$(node "$BENCH/seed.cjs" --url "$P_URL" --key "$P_KEY" --set a --state opted_in --shape "$WORK/peer.shape") ||
        die "seeding the peer failed (the end of its log will be in ${RESULTS#"$ROOT"/}/peer.log)"
    say "peer: $out"
fi
if [[ $ONLY == both ]] && ! diff -q "$WORK/consentd.shape" "$WORK/peer.shape" >/dev/null; then
    say "note: the two servers' JSON differs (< consentd, > peer); the comparison is about the same work, not the same bytes:"
    diff "$WORK/consentd.shape" "$WORK/peer.shape" | grep '^[<>]' | sed 's/^/bench:   /' >&2 || true
fi

# issue 10: the ProTexting run needs a group on each server, and consentd's per-credential
# limit for that surface (60 requests per second unless the account sets one) raised.
# pt_setup URL KEY -> the new group's id
pt_setup() {
    node -e '
const [url, key] = process.argv.slice(1);
const call = (method, path, body) => fetch(url + path, { method, body: JSON.stringify(body),
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" } })
    .then(async (r) => { if (!r.ok && r.status !== 404) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`); return r.json(); });
(async () => {
    const g = await call("POST", "/api/v1/groups", { name: "bench" });
    await call("PATCH", "/api/v1/settings", { rate_limit: { limit: 1000000, window_seconds: 1 } });
    process.stdout.write(String(g.id));
})().catch((e) => { console.error(String(e)); process.exit(1); });' "$1" "$2"
}
if [[ $PROTEXTING == 1 ]]; then
    if want consentd; then C_GROUP=$(pt_setup "$C_URL" "$C_KEY") || die "ProTexting setup failed on consentd"; fi
    if want peer; then P_GROUP=$(pt_setup "$P_URL" "$P_KEY") || die "ProTexting setup failed on the peer"; fi
fi

# ---------------------------------------------------------------------------- wrk

export LUA_PATH="$BENCH/?.lua;;"


# bench NAME URL KEY -- the POST run then the GET run are done by the callers, in the
# order consentd POST, peer POST, consentd GET, peer GET.
post_run() {
    local name=$1 url=$2 key=$3
    if warm; then
        say "warming up $name POST ($WARMUP, other numbers)"
        run_wrk "$RESULTS/warmup-$name-post.txt" "$WARMUP" "$url" post_consent.lua "$key" b opted_in "$THREADS"
    fi
    say "measuring $name POST /api/v1/consents ($DURATION, -t$THREADS -c$CONNS)"
    run_wrk "$RESULTS/$name-post.txt" "$DURATION" "$url" post_consent.lua "$key" a opted_out "$THREADS"
}
get_run() {
    local name=$1 url=$2 key=$3
    if warm; then
        say "warming up $name GET ($WARMUP)"
        run_wrk "$RESULTS/warmup-$name-get.txt" "$WARMUP" "$url" get_contact.lua "$key" a "$THREADS"
    fi
    say "measuring $name GET /api/v1/contacts/{number} ($DURATION, -t$THREADS -c$CONNS)"
    run_wrk "$RESULTS/$name-get.txt" "$DURATION" "$url" get_contact.lua "$key" a "$THREADS"
}

pt_run() {
    local name=$1 url=$2 key=$3 group=$4
    if warm; then
        say "warming up $name ProTexting opt-in ($WARMUP, other numbers)"
        run_wrk "$RESULTS/warmup-$name-pt.txt" "$WARMUP" "$url" protexting.lua "$key" "$group" b "$THREADS"
    fi
    say "measuring $name POST /v1/contacts-opt-in/create ($DURATION, -t$THREADS -c$CONNS)"
    run_wrk "$RESULTS/$name-pt.txt" "$DURATION" "$url" protexting.lua "$key" "$group" a "$THREADS"
}

want consentd && post_run consentd "$C_URL" "$C_KEY"
want peer && post_run peer "$P_URL" "$P_KEY"
want consentd && get_run consentd "$C_URL" "$C_KEY"
want peer && get_run peer "$P_URL" "$P_KEY"
if [[ $PROTEXTING == 1 ]]; then
    want consentd && pt_run consentd "$C_URL" "$C_KEY" "$C_GROUP"
    want peer && pt_run peer "$P_URL" "$P_KEY" "$P_GROUP"
fi

# issue 12: durable Omeda submissions of three message types each (consentd only: the peer
# has no Omeda surface). The account "bench" has the brand BENCH; types 1..3 are made here.
omeda_run() {
    local url=$1 key=$2 t
    for t in 1 2 3; do
        curl -fsS -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
            -d "{\"id\":$t,\"name\":\"bench type $t\"}" "$url/api/v1/message-types" ||
            die "could not create message type $t"
    done
    if warm; then
        say "warming up consentd Omeda POST ($WARMUP, other numbers)"
        run_wrk "$RESULTS/warmup-consentd-omeda.txt" "$WARMUP" "$url" omeda.lua "$key" BENCH "$THREADS" b
    fi
    say "measuring consentd POST /webservices/rest/brand/BENCH/messageoptqueue ($DURATION, -t$THREADS -c$CONNS)"
    run_wrk "$RESULTS/consentd-omeda.txt" "$DURATION" "$url" omeda.lua "$key" BENCH "$THREADS" a
}
OMEDA=${BENCH_OMEDA:-1}
want consentd && [[ $OMEDA == 1 ]] && omeda_run "$C_URL" "$C_KEY"

# issue 16: the realistic workloads, on both servers, after the runs above (so those keep
# their small tables): a new number per durable POST, then random reads over CONTACTS
# contacts seeded in bulk (consentd through the Octopush batch path, the peer directly).
if [[ $REAL == 1 ]]; then
    want consentd && seed_consentd 0 "$CONTACTS" "$(block 0) $(block 1)"
    want peer && seed_peer 0 "$CONTACTS"
    want consentd && new_run consentd "$C_URL" "$C_KEY" consents 0 1 new
    want peer && new_run peer "$P_URL" "$P_KEY" consents 0 1 new
    want consentd && rand_run consentd "$C_URL" "$C_KEY" contact "$CONTACTS" rget
    want peer && rand_run peer "$P_URL" "$P_KEY" contact "$CONTACTS" rget
    want consentd && rand_run consentd "$C_URL" "$C_KEY" check "$CONTACTS" rcheck "$(check_scope "$C_GROUP")"
    want peer && rand_run peer "$P_URL" "$P_KEY" check "$CONTACTS" rcheck "$(check_scope "$P_GROUP")"
    want consentd && C_RSS=$(rss_kb "$C_PID")
fi

# ---------------------------------------------------------------------------- table

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
if COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    [[ -n $(git -C "$ROOT" status --porcelain -- src meson.build 2>/dev/null | head -n1) ]] && COMMIT="$COMMIT with local changes"
    COMMIT="commit $COMMIT"
else
    COMMIT="an uncommitted tree"
fi

{
    echo "| endpoint | server | requests/s | p50 | p99 | timeouts | errors |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    POST_EP='`POST /api/v1/consents` (durable)'
    GET_EP='`GET /api/v1/contacts/{number}`'
    if want consentd; then row "$POST_EP" consentd "$RESULTS/consentd-post.txt"; fi
    if want peer; then row "$([[ $ONLY == both ]] || echo "$POST_EP")" "$PEER_LABEL" "$RESULTS/peer-post.txt"; fi
    if [[ $ONLY == both ]]; then ratio_row "$RESULTS/consentd-post.txt" "$RESULTS/peer-post.txt"; fi
    if want consentd; then row "$GET_EP" consentd "$RESULTS/consentd-get.txt"; fi
    if want peer; then row "$([[ $ONLY == both ]] || echo "$GET_EP")" "$PEER_LABEL" "$RESULTS/peer-get.txt"; fi
    if [[ $ONLY == both ]]; then ratio_row "$RESULTS/consentd-get.txt" "$RESULTS/peer-get.txt"; fi
    if want consentd && [[ $OMEDA == 1 ]]; then
        row '`POST /webservices/rest/brand/{brand}/messageoptqueue` (durable, 3 types)' consentd "$RESULTS/consentd-omeda.txt"
    fi
    if [[ $PROTEXTING == 1 ]]; then
        PT_EP='`POST /v1/contacts-opt-in/create` (durable, new number each)'
        if want consentd; then row "$PT_EP" consentd "$RESULTS/consentd-pt.txt"; fi
        if want peer; then row "$([[ $ONLY == both ]] || echo "$PT_EP")" "$PEER_LABEL" "$RESULTS/peer-pt.txt"; fi
        if [[ $ONLY == both ]]; then ratio_row "$RESULTS/consentd-pt.txt" "$RESULTS/peer-pt.txt"; fi
    fi
    if [[ $REAL == 1 ]]; then
        ep='`POST /api/v1/consents`, a new number each (durable)'
        if want consentd; then row "$ep" consentd "$RESULTS/consentd-new.txt"; fi
        if want peer; then row "$([[ $ONLY == both ]] || echo "$ep")" "$PEER_LABEL" "$RESULTS/peer-new.txt"; fi
        if [[ $ONLY == both ]]; then ratio_row "$RESULTS/consentd-new.txt" "$RESULTS/peer-new.txt"; fi
        ep="\`GET /api/v1/contacts/{number}\`, random over $(fmt_int "$CONTACTS")"
        if want consentd; then row "$ep" consentd "$RESULTS/consentd-rget.txt"; fi
        if want peer; then row "$([[ $ONLY == both ]] || echo "$ep")" "$PEER_LABEL" "$RESULTS/peer-rget.txt"; fi
        if [[ $ONLY == both ]]; then ratio_row "$RESULTS/consentd-rget.txt" "$RESULTS/peer-rget.txt"; fi
        ep="\`GET /api/v1/check?to=&scope=$([[ $CHECK_SCOPE == list ]] && echo "group:{list}" || echo "$CHECK_SCOPE")\`, random over $(fmt_int "$CONTACTS")"
        if want consentd; then row "$ep" consentd "$RESULTS/consentd-rcheck.txt"; fi
        if want peer; then row "$([[ $ONLY == both ]] || echo "$ep")" "$PEER_LABEL" "$RESULTS/peer-rcheck.txt"; fi
        if [[ $ONLY == both ]]; then ratio_row "$RESULTS/consentd-rcheck.txt" "$RESULTS/peer-rcheck.txt"; fi
    fi
    echo
    echo "wrk 4 \`-t$THREADS -c$CONNS -d$DURATION --timeout $TIMEOUT\` ($(warm && echo "after a $WARMUP warm-up" || echo "no warm-up")) on the same" \
        "$(nproc)-core machine as the servers (${CPU:-unknown CPU}, $(uname -sr)), $(date -u +%Y-%m-%d)." \
        "$([[ $ONLY == both ]] && echo "Both servers" || echo "Server"): one SQLite file on $FSTYPE, WAL, \`synchronous=FULL\`; a POST is answered only after its" \
        "commit is durable and appends one hash-chained ledger event (1000 numbers, each request flips one" \
        "between opted_in and opted_out); GETs rotate over the same 1000 contacts$([[ $PROTEXTING == 1 ]] &&
            echo "; each ProTexting opt-in is a new number: a contact, its group, a pending consent and its event, a flow and a queued CTA, all in one commit")." \
        "errors = non-2xx answers +" \
        "socket errors; timeouts = no answer within $TIMEOUT."
    if [[ $REAL == 1 ]]; then
        echo "Realistic rows (issue 16): every new-number POST is a number no server has seen (a new contact," \
            "its consent and one ledger event, durable); the random reads pick, per request and per wrk thread" \
            "(each its own PRNG), one of $(fmt_int "$CONTACTS") contacts seeded in bulk, each opted in to one list" \
            "(group) scope, so \`scope=all\` checks answer 200 \`no_consent\` (BENCH_CHECK_SCOPE=list: the list's scope, \`opted_in\`)." \
            "$(want consentd && echo "consentd seeding: $SEED_MSG; consentd's RSS after the reads: $(fmt_mb "$C_RSS").")"
    fi
    if [[ $ONLY == both ]]; then
        echo "consentd / peer: above 1 in requests/s, below 1 in p50 and p99 is better for consentd."
    fi
    if want consentd; then
        C_THREADS=$(grep -m1 -o '"threads" *: *[0-9]*' "$WORK/consentd.log" 2>/dev/null | grep -o '[0-9]*$' || true)
        echo "consentd: \`$(basename "$CONSENTD") serve\` built from $COMMIT${C_THREADS:+, one process with $C_THREADS worker threads}."
    fi
    if want peer; then
        echo "Peer (\`bench/peers/fastify\`): fastify $(pkgver fastify) + better-sqlite3 $(pkgver better-sqlite3)" \
            "(SQLite $(node -p "new (require('$PEER_DIR/node_modules/better-sqlite3'))(':memory:').prepare('select sqlite_version()').pluck().get()" 2>/dev/null || echo '?'))," \
            "a single node $(node --version) process, as fastify is normally deployed; one transaction and one" \
            "fsync'd commit per POST (better-sqlite3 is synchronous)."
    fi
} | tee "$RESULTS/table.md"
for f in "$RESULTS"/consentd-*.txt "$RESULTS"/peer-*.txt; do
    [[ -f $f ]] || continue
    read -r _ _ _ to err < <(stats "$f")
    ((to + err == 0)) || say "warning: $(basename "$f" .txt): $to timeouts, $err errors (see the server log in ${RESULTS#"$ROOT"/})"
done
say "raw wrk output and table.md in ${RESULTS#"$ROOT"/}"
# issue 11: Octopush batches of contacts (its own server and database; OCTO_* variables).
if [[ ${BENCH_OCTOPUSH:-0} == 1 ]] && want consentd; then CONSENTD=$CONSENTD "$BENCH/octopush.sh"; fi
