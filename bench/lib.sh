#!/usr/bin/env bash
# bench/lib.sh -- shared by bench/run.sh and bench/scale.sh (sourced, not run). The caller
# sets ROOT, BENCH, PEER_DIR, THREADS, CONNS, TIMEOUT, WARMUP, KEEP, ONLY and BENCH_TAG
# (the prefix of its messages), then calls peer_deps and workspace NAME.
# shellcheck disable=SC2034 # PEER_LABEL, C_PID, C_GROUP, ... are for the callers

say() { printf '%s\n' "${BENCH_TAG:-bench}: $*" >&2; }
die() { say "$*"; exit 1; }
want() { [[ $ONLY == both || $ONLY == "$1" ]]; }

# peer_deps -- installs (npm ci) or rebuilds the peer's node_modules when needed.
peer_deps() {
    want peer || return 0
    if [[ ! -d $PEER_DIR/node_modules/better-sqlite3 || ! -d $PEER_DIR/node_modules/fastify ]]; then
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

    if ! (cd "$PEER_DIR" && node -e 'new (require("better-sqlite3"))(":memory:")' 2>/dev/null); then
        # node_modules built for another Node (NODE_MODULE_VERSION mismatch): rebuild the addon.
        say "better-sqlite3 does not load with node $(node --version); npm rebuild better-sqlite3"
        (cd "$PEER_DIR" && { npm rebuild better-sqlite3 --loglevel=error >&2 ||
            npm_config_nodedir=/usr npm rebuild better-sqlite3 --loglevel=error >&2; }) ||
            die "could not rebuild better-sqlite3 in $PEER_DIR"
    fi
}

# workspace NAME [SUFFIX] -- the temporary directory WORK, RESULTS under bench/results/
# (STAMP[-SUFFIX]), the PIDS killed on exit, FSTYPE.
workspace() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    STAMP=$(date +%Y%m%d-%H%M%S)
    RESULTS=$BENCH/results/$STAMP${2:+-$2}
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
    if [[ $FSTYPE == tmpfs || $FSTYPE == ramfs ]]; then
        say "warning: $WORK is on $FSTYPE: fsync costs nothing there, so the durable POST is not durable; set TMPDIR to a disk"
    fi
}

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

# start_consentd -- a fresh database in WORK, the account "bench" (login C_LOGIN, for the
# Octopush seeding path), the server: sets C_DB, C_PORT, C_KEY, C_LOGIN, C_URL, C_PID.
start_consentd() {
    C_LOGIN=bench@bench.example
    C_DB=sqlite:$WORK/consentd.db
    C_PORT=$(free_port)
    "$CONSENTD" migrate --db "$C_DB" >"$WORK/consentd-migrate.log" 2>&1 ||
        { cat "$WORK/consentd-migrate.log" >&2; die "consentd migrate failed"; }
    C_KEY=$("$CONSENTD" account create bench --login "$C_LOGIN" --db "$C_DB" 2>>"$WORK/consentd-migrate.log" | api_key) ||
        { cat "$WORK/consentd-migrate.log" >&2; die "consentd account create failed"; }
    [[ $C_KEY == cd_* ]] || die "consentd account create printed no api_key"
    start_server consentd "$WORK/consentd.log" "$CONSENTD" serve --listen "127.0.0.1:$C_PORT" --db "$C_DB"
    C_URL=http://127.0.0.1:$C_PORT
    say "consentd listening on $C_URL (pid ${PIDS[-1]})"
    C_PID=${PIDS[-1]}
}

# start_peer -- the same for the fastify peer: sets P_DB, P_PORT, P_KEY, P_URL, P_PID.
start_peer() {
    P_DB=sqlite:$WORK/peer.db
    P_PORT=$(free_port)
    node "$PEER_DIR/server.js" migrate --db "$P_DB" 2>"$WORK/peer-migrate.log" ||
        { cat "$WORK/peer-migrate.log" >&2; die "peer migrate failed"; }
    P_KEY=$(node "$PEER_DIR/server.js" account create bench --db "$P_DB" 2>>"$WORK/peer-migrate.log" | api_key)
    [[ $P_KEY == cd_* ]] || die "peer account create printed no api_key"
    start_server peer "$WORK/peer.log" node "$PEER_DIR/server.js" serve --listen "127.0.0.1:$P_PORT" --db "$P_DB"
    P_URL=http://127.0.0.1:$P_PORT
    say "peer (fastify + better-sqlite3, 1 node process) listening on $P_URL (pid ${PIDS[-1]})"
    P_PID=${PIDS[-1]}
}

# ---------------------------------------------------------------------------- issue 16

# The first number (lib.lua's big_number) of new-number block K: blocks of 4,000,000 numbers
# from 10,000,000 up, far above the seeded contacts (0 .. N-1, N <= 10,000,000). A run must
# send fewer than 4,000,000 requests (at 60k/s, about 66 s); lib.lua's 158,000,000 numbers hold
# blocks 0 .. 36.
block() { echo $((10000000 + $1 * 4000000)); }

# seed_consentd FROM COUNT [PROBE_FIRSTS] -- numbers FROM .. FROM+COUNT-1 into consentd through
# the Octopush batch path (bench/seed_bulk.mjs), each in the list "bench_list" and opted in
# to it; checks the seeded numbers answer and the probed new-number blocks are valid and new.
# Sets C_GROUP (the list's group id) and SEED_MSG.
seed_consentd() {
    local out
    out=$(node "$BENCH/seed_bulk.mjs" --url "$C_URL" --login "$C_LOGIN" --key "$C_KEY" \
        --from "$1" --count "$2" --batch "${BENCH_SEED_BATCH:-5000}" --conns 2 --probe "${3:-}" 2>"$WORK/seed.err") ||
        { cat "$WORK/seed.err" >&2; die "seeding consentd through Octopush failed"; }
    C_GROUP=$(sed -n 's/^group //p' <<<"$out")
    SEED_MSG=$(sed 's/^seed_bulk: //' "$WORK/seed.err")
    say "consentd: $SEED_MSG"
}

# seed_peer FROM COUNT -- the same numbers into the peer's database, directly (not measured).
seed_peer() {
    local out
    out=$(node "$PEER_DIR/seed.js" --db "$P_DB" --from "$1" --count "$2" 2>"$WORK/seed-peer.err") ||
        { cat "$WORK/seed-peer.err" >&2; die "seeding the peer failed"; }
    P_GROUP=$(sed -n 's/^group //p' <<<"$out")
    say "peer: $(cat "$WORK/seed-peer.err")"
}

# new_run NAME URL KEY KIND WARM_BLOCK BLOCK TAG -- POST /api/v1/KIND (consents|contacts) with
# a new number per request: a warm-up over block WARM_BLOCK, then the measured run over BLOCK,
# into $RESULTS/NAME-TAG.txt.
new_run() {
    local name=$1 url=$2 key=$3 kind=$4 wblk=$5 blk=$6 tag=$7 f
    if warm; then
        say "warming up $name POST /api/v1/$kind, new numbers ($WARMUP)"
        run_wrk "$RESULTS/warmup-$name-$tag.txt" "$WARMUP" "$url" post_new.lua "$key" "$kind" "$(block "$wblk")" "$THREADS"
    fi
    say "measuring $name POST /api/v1/$kind, a new number each ($DURATION, -t$THREADS -c$CONNS)"
    run_wrk "$RESULTS/$name-$tag.txt" "$DURATION" "$url" post_new.lua "$key" "$kind" "$(block "$blk")" "$THREADS"
    for f in "$RESULTS/warmup-$name-$tag.txt" "$RESULTS/$name-$tag.txt"; do
        [[ ! -f $f ]] || (($(field "$f" requests) < 3990000)) ||
            die "$(basename "$f" .txt) sent more requests than a block of new numbers holds: shorten BENCH_DURATION"
    done
}

# rand_run NAME URL KEY KIND COUNT TAG [SCOPE] -- GET at random over the COUNT seeded contacts:
# KIND contact (GET /api/v1/contacts/{number}) or check (GET /api/v1/check?to=&scope=SCOPE).
rand_run() {
    local name=$1 url=$2 key=$3 kind=$4 count=$5 tag=$6 scope=${7:-all}
    if warm; then
        say "warming up $name random $kind ($WARMUP)"
        run_wrk "$RESULTS/warmup-$name-$tag.txt" "$WARMUP" "$url" get_random.lua "$key" "$kind" "$count" "$scope"
    fi
    say "measuring $name random $kind over $(fmt_int "$count") contacts ($DURATION, -t$THREADS -c$CONNS)"
    run_wrk "$RESULTS/$name-$tag.txt" "$DURATION" "$url" get_random.lua "$key" "$kind" "$count" "$scope"
}

# check_scope GROUP_ID -- the scope of the random checks: BENCH_CHECK_SCOPE (all), or with
# "list" the seeded list's group:GROUP_ID.
check_scope() { if [[ ${CHECK_SCOPE:-all} == list ]]; then echo "group:$1"; else echo "${CHECK_SCOPE:-all}"; fi; }

# rss_kb PID -- VmRSS of a process, in kB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fmt_mb() { awk -v kb="$1" 'BEGIN { printf "%.0f MB", kb / 1024 }'; }
