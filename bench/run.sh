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
#
# Environment:
#   BENCH_DURATION=10s   wrk -d for each measured run
#   BENCH_CONNS=64       wrk -c (open connections)
#   BENCH_THREADS=2      wrk -t
#   BENCH_WARMUP=3s      unmeasured run before each measured one (0 to skip)
#   BENCH_TIMEOUT=2s     wrk --timeout: slower answers count as timeouts
#   BENCH_ONLY=both      both | consentd | peer
#   BENCH_OMEDA=1        0 skips the Omeda opt queue run (consentd only; issue 12)
#   BENCH_KEEP=0         1 keeps the temporary directory (databases, server logs)
#   BENCH_OCTOPUSH=0     1 also runs bench/octopush.sh (issue 11: contacts/s in Octopush batches)
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

say() { printf '%s\n' "bench: $*" >&2; }
die() { say "$*"; exit 1; }

case $ONLY in both | consentd | peer) ;; *) die "BENCH_ONLY must be both, consentd or peer" ;; esac
want() { [[ $ONLY == both || $ONLY == "$1" ]]; }

command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v node >/dev/null || die "node is not installed (the peer and the seeding need it)"
if want consentd; then
    [[ $CONSENTD == /* ]] || CONSENTD=$ROOT/$CONSENTD
    [[ -x $CONSENTD ]] || die "$CONSENTD not found: build it first (make), or set BENCH_ONLY=peer"
fi
((THREADS >= 1 && CONNS >= THREADS)) || die "need BENCH_THREADS >= 1 and BENCH_CONNS >= BENCH_THREADS"

# ---------------------------------------------------------------------------- peer deps

if want peer && [[ ! -d $PEER_DIR/node_modules/better-sqlite3 || ! -d $PEER_DIR/node_modules/fastify ]]; then
    say "installing the peer's dependencies (npm ci in bench/peers/fastify; better-sqlite3 may compile)"
    if ! (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2); then
        # better-sqlite3 falls back to node-gyp when no prebuilt binary downloads; node-gyp
        # then wants Node's headers, which Debian ships in /usr/include/node.
        [[ -f /usr/include/node/node.h ]] || die "npm ci failed (no prebuilt better-sqlite3 and no Node headers: apt-get install libnode-dev)"
        say "npm ci failed; retrying with the system Node headers (npm_config_nodedir=/usr)"
        (cd "$PEER_DIR" && npm_config_nodedir=/usr npm ci --no-audit --no-fund --loglevel=error >&2) ||
            die "npm ci failed in $PEER_DIR"
    fi
fi

if want peer && ! (cd "$PEER_DIR" && node -e 'new (require("better-sqlite3"))(":memory:")' 2>/dev/null); then
    # node_modules built for another Node (NODE_MODULE_VERSION mismatch): rebuild the addon.
    say "better-sqlite3 does not load with node $(node --version); npm rebuild better-sqlite3"
    (cd "$PEER_DIR" && { npm rebuild better-sqlite3 --loglevel=error >&2 ||
        npm_config_nodedir=/usr npm rebuild better-sqlite3 --loglevel=error >&2; }) ||
        die "could not rebuild better-sqlite3 in $PEER_DIR"
fi

# ---------------------------------------------------------------------------- workspace

WORK=$(mktemp -d "${TMPDIR:-/tmp}/consentd-bench.XXXXXX")
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH/results/$STAMP
mkdir -p "$RESULTS"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    local f
    for f in "$WORK"/*.log; do [[ -f $f ]] && tail -n 200 "$f" >"$RESULTS/$(basename "$f")"; done
    if [[ $KEEP == 1 ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FSTYPE=$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
[[ $FSTYPE == tmpfs || $FSTYPE == ramfs ]] &&
    say "warning: $WORK is on $FSTYPE: fsync costs nothing there, so the durable POST is not durable; set TMPDIR to a disk"

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server NAME LOG CMD... -- starts CMD in the background and waits for its
# {"msg":"listening"} log line.
start_server() {
    local name=$1 logf=$2 pid
    shift 2
    "$@" 2>"$logf" >/dev/null &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 300); do
        if grep -Eq '"msg" ?: ?"listening"' "$logf" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logf" >&2 || true
            die "$name exited before listening (log above)"
        fi
        sleep 0.1
    done
    tail -n 20 "$logf" >&2 || true
    die "$name did not log \"listening\" within 30 s"
}

# api_key -- the "api_key" of the JSON object that `account create` printed on stdin.
api_key() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(String(JSON.parse(s.match(/\{[\s\S]*\}/)[0]).api_key||""))}catch{}})'; }

if want consentd; then
    C_DB=sqlite:$WORK/consentd.db
    C_PORT=$(free_port)
    "$CONSENTD" migrate --db "$C_DB" >"$WORK/consentd-migrate.log" 2>&1 ||
        { cat "$WORK/consentd-migrate.log" >&2; die "consentd migrate failed"; }
    C_KEY=$("$CONSENTD" account create bench --db "$C_DB" 2>>"$WORK/consentd-migrate.log" | api_key) ||
        { cat "$WORK/consentd-migrate.log" >&2; die "consentd account create failed"; }
    [[ $C_KEY == cd_* ]] || die "consentd account create printed no api_key"
    start_server consentd "$WORK/consentd.log" "$CONSENTD" serve --listen "127.0.0.1:$C_PORT" --db "$C_DB"
    C_URL=http://127.0.0.1:$C_PORT
    say "consentd listening on $C_URL (pid ${PIDS[-1]})"
fi

if want peer; then
    P_DB=sqlite:$WORK/peer.db
    P_PORT=$(free_port)
    node "$PEER_DIR/server.js" migrate --db "$P_DB" 2>"$WORK/peer-migrate.log" ||
        { cat "$WORK/peer-migrate.log" >&2; die "peer migrate failed"; }
    P_KEY=$(node "$PEER_DIR/server.js" account create bench --db "$P_DB" 2>>"$WORK/peer-migrate.log" | api_key)
    [[ $P_KEY == cd_* ]] || die "peer account create printed no api_key"
    start_server peer "$WORK/peer.log" node "$PEER_DIR/server.js" serve --listen "127.0.0.1:$P_PORT" --db "$P_DB"
    P_URL=http://127.0.0.1:$P_PORT
    say "peer (fastify + better-sqlite3, 1 node process) listening on $P_URL (pid ${PIDS[-1]})"
fi

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

# ---------------------------------------------------------------------------- wrk

export LUA_PATH="$BENCH/?.lua;;"

# run_wrk OUTFILE DURATION URL SCRIPT ARGS...
run_wrk() {
    local out=$1 dur=$2 url=$3 script=$4
    shift 4
    wrk -t"$THREADS" -c"$CONNS" -d"$dur" --timeout "$TIMEOUT" --latency -s "$BENCH/$script" "$url" -- "$@" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed ($script against $url)"; }
    grep -q '^BENCH_RESULT ' "$out" || { cat "$out" >&2; die "no BENCH_RESULT line in wrk's output"; }
}

warm() { [[ $WARMUP != 0 && $WARMUP != 0s ]]; }

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

want consentd && post_run consentd "$C_URL" "$C_KEY"
want peer && post_run peer "$P_URL" "$P_KEY"
want consentd && get_run consentd "$C_URL" "$C_KEY"
want peer && get_run peer "$P_URL" "$P_KEY"

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

# ---------------------------------------------------------------------------- table

# field FILE NAME -- one value from the BENCH_RESULT line.
field() { sed -n "s/^BENCH_RESULT .*\b$2=\([0-9.]*\).*/\1/p" "$1"; }

# stats FILE -> "rps p50_us p99_us timeouts errors"
stats() {
    local f=$1
    awk -v req="$(field "$f" requests)" -v dur="$(field "$f" duration_us)" \
        -v p50="$(field "$f" p50_us)" -v p99="$(field "$f" p99_us)" \
        -v c="$(field "$f" connect)" -v r="$(field "$f" read)" -v w="$(field "$f" write)" \
        -v s="$(field "$f" status)" -v t="$(field "$f" timeout)" \
        'BEGIN { printf "%.1f %d %d %d %d\n", (dur > 0 ? req / (dur / 1e6) : 0), p50, p99, t, c + r + w + s }'
}

fmt_int() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
fmt_ms() { awk -v us="$1" 'BEGIN { ms = us / 1000; if (ms < 10) printf "%.2f ms", ms; else if (ms < 100) printf "%.1f ms", ms; else printf "%.0f ms", ms }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }'; }

PEER_LABEL="fastify + better-sqlite3"
row() { # row ENDPOINT SERVERLABEL FILE
    local rps p50 p99 to err
    read -r rps p50 p99 to err < <(stats "$3")
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$(fmt_int "$rps")" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$(fmt_int "$to")" "$(fmt_int "$err")"
}
ratio_row() { # ratio_row CONSENTD_FILE PEER_FILE
    local a b
    read -r -a a < <(stats "$1")
    read -r -a b < <(stats "$2")
    printf '| | **consentd / peer** | **%s** | %s | %s | | |\n' "$(ratio "${a[0]}" "${b[0]}")" "$(ratio "${a[1]}" "${b[1]}")" "$(ratio "${a[2]}" "${b[2]}")"
}

pkgver() { node -p "require('$PEER_DIR/node_modules/$1/package.json').version" 2>/dev/null || echo '?'; }
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
    echo
    echo "wrk 4 \`-t$THREADS -c$CONNS -d$DURATION --timeout $TIMEOUT\` ($(warm && echo "after a $WARMUP warm-up" || echo "no warm-up")) on the same" \
        "$(nproc)-core machine as the servers (${CPU:-unknown CPU}, $(uname -sr)), $(date -u +%Y-%m-%d)." \
        "$([[ $ONLY == both ]] && echo "Both servers" || echo "Server"): one SQLite file on $FSTYPE, WAL, \`synchronous=FULL\`; a POST is answered only after its" \
        "commit is durable and appends one hash-chained ledger event (1000 numbers, each request flips one" \
        "between opted_in and opted_out); GETs rotate over the same 1000 contacts. errors = non-2xx answers +" \
        "socket errors; timeouts = no answer within $TIMEOUT."
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
