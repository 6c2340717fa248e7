#!/usr/bin/env bash
# Test services for Loopwright, on 127.0.0.1 only: PostgreSQL, an S3 server (moto) and Redis
# (the feature store's online store); plus Debian's Chromium, the browser the dashboard's tests
# drive (a program, not a service: `start` installs it when missing).
#
#   scripts/services.sh start    start all three (idempotent: running services are left alone)
#   scripts/services.sh stop     stop all three
#   scripts/services.sh env      print the export lines the tests read (eval "$(... env)");
#                                the Redis line only while Redis answers, the Chromium line
#                                only when it is installed
#   scripts/services.sh status   say what is running; exit 1 unless all three are
#
# Environment:
#   LW_SERVICES_DIR  state folder (default: $PWD/.services): data, sockets, logs, pid files
#   LW_VENV          virtualenv holding moto_server (default: $PWD/.venv)
#   LW_PG_PORT       PostgreSQL port (default 54329)
#   LW_S3_PORT       moto port (default 55000)
#   LW_REDIS_PORT    redis-server port (default 56379)
#
# As root (CI), PostgreSQL runs as the 'postgres' user (created if missing), because it refuses
# to run as root; when that user cannot reach the state folder (e.g. under /root), or the socket
# path would be too long, the cluster lives in /tmp/lw-services-<hash of the state folder>.
set -euo pipefail

PG_PORT="${LW_PG_PORT:-54329}"
S3_PORT="${LW_S3_PORT:-55000}"
REDIS_PORT="${LW_REDIS_PORT:-56379}"
HOST=127.0.0.1
WAIT_SECONDS=30
PG_USER=postgres

STATE_DIR="${LW_SERVICES_DIR:-$PWD/.services}"
VENV="${LW_VENV:-$PWD/.venv}"

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_root() { [[ "$(id -u)" == 0 ]]; }

init_state_dir() {
    mkdir -p "$STATE_DIR"
    STATE_DIR="$(cd "$STATE_DIR" && pwd -P)"
    S3_PID_FILE="$STATE_DIR/moto.pid"
    S3_LOG="$STATE_DIR/moto.log"
    REDIS_DIR="$STATE_DIR/redis"
    REDIS_PID_FILE="$REDIS_DIR/redis.pid"
    REDIS_LOG="$REDIS_DIR/redis.log"
}

# --- PostgreSQL ------------------------------------------------------------------------------

find_pg_bin() {
    local ctl dir dirs
    if ctl="$(command -v pg_ctl)" && command -v initdb >/dev/null; then
        dirname "$(readlink -f "$ctl")"
        return
    fi
    # Debian keeps the server binaries off PATH; prefer the newest version.
    mapfile -t dirs < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
    for dir in "${dirs[@]}"; do
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
            echo "$dir"
            return
        fi
    done
    return 1
}

ensure_pg_bin() {
    if PG_BIN="$(find_pg_bin)"; then
        return
    fi
    is_root || die "PostgreSQL server tools (initdb, pg_ctl) not found on PATH or in" \
        "/usr/lib/postgresql/*/bin; install them (apt-get install postgresql) or run as root"
    log "installing PostgreSQL with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
    PG_BIN="$(find_pg_bin)" || die "apt-get installed postgresql but initdb/pg_ctl are still missing"
}

ensure_pg_user() {
    is_root || return 0
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
        log "creating system user $PG_USER"
        useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    fi
}

# Run a command as the user PostgreSQL runs as (ourselves unless we are root).
as_pg() {
    if is_root; then
        # From '/', as the working folder may be one that user cannot enter (e.g. under /root).
        (cd / && runuser -u "$PG_USER" -- "$@")
    else
        "$@"
    fi
}

# Sets PG_DIR: "$STATE_DIR/pg", or a /tmp folder when that one is unusable (see the header).
choose_pg_dir() {
    PG_DIR="$STATE_DIR/pg"
    local socket="$PG_DIR/run/.s.PGSQL.$PG_PORT"
    if (( ${#socket} > 100 )) || { is_root && ! runuser -u "$PG_USER" -- test -x "$STATE_DIR"; }; then
        PG_DIR="/tmp/lw-services-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12)/pg"
        log "note: the PostgreSQL cluster lives in $PG_DIR ($PG_USER cannot enter $STATE_DIR," \
            "or its socket path would be too long)"
    fi
    PG_DATA="$PG_DIR/data"
    PG_SOCKETS="$PG_DIR/run"
    PG_LOG="$PG_DIR/postgres.log"
}

pg_running() {
    [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -t 2
}

start_postgres() {
    ensure_pg_bin
    ensure_pg_user
    choose_pg_dir
    mkdir -p "$PG_DATA" "$PG_SOCKETS"
    if is_root; then
        chown -R "$PG_USER:" "$PG_DIR"
    fi
    chmod 700 "$PG_DATA"
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        log "initdb $PG_DATA"
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1 \
            || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed (log above)"; }
        echo "include_if_exists = 'loopwright.conf'" >>"$PG_DATA/postgresql.conf"
    fi
    if pg_running; then
        log "PostgreSQL already running ($PG_DATA)"
    else
        # Rewritten at each start so a changed port or folder takes effect. Durability is
        # traded for speed: this cluster only ever holds test data.
        local sockets="${PG_SOCKETS//"'"/"''"}"
        cat >"$PG_DATA/loopwright.conf" <<EOF
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$sockets'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
        if is_root; then
            chown "$PG_USER:" "$PG_DATA/loopwright.conf"
        fi
        log "starting PostgreSQL on $HOST:$PG_PORT"
        if ! as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$WAIT_SECONDS" \
            >/dev/null; then
            tail -n 30 "$PG_LOG" >&2 || true
            die "PostgreSQL did not start (log above, full log: $PG_LOG)"
        fi
    fi
    local waited=0
    until pg_ready; do
        (( waited++ < WAIT_SECONDS )) || die "PostgreSQL on $HOST:$PG_PORT is not accepting" \
            "connections after ${WAIT_SECONDS}s (is another server on that port?); see $PG_LOG"
        sleep 1
    done
    log "PostgreSQL ready: postgresql://postgres@$HOST:$PG_PORT/postgres"
}

stop_postgres() {
    PG_BIN="$(find_pg_bin)" || { log "PostgreSQL not installed: nothing to stop"; return 0; }
    choose_pg_dir
    if pg_running; then
        log "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "$WAIT_SECONDS" >/dev/null
    else
        log "PostgreSQL not running"
    fi
}

# --- S3 (moto) -------------------------------------------------------------------------------

s3_pid() {
    local pid
    pid="$(cat "$S3_PID_FILE" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

s3_answers() {
    # Any HTTP answer will do: moto replies to GET / with the bucket list.
    local url="http://$HOST:$S3_PORT/"
    if command -v curl >/dev/null; then
        curl -s -o /dev/null --max-time 2 "$url"
    else
        python3 -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)' "$url" \
            >/dev/null 2>&1
    fi
}

start_s3() {
    local moto="$VENV/bin/moto_server" pid waited=0
    if pid="$(s3_pid)"; then
        log "moto already running (pid $pid)"
    else
        [[ -x "$moto" ]] || die "$moto not found; create the virtualenv first (make venv)" \
            "or point LW_VENV at one with moto[server] installed"
        if s3_answers; then
            die "something else already answers on $HOST:$S3_PORT; stop it or set LW_S3_PORT"
        fi
        log "starting moto on $HOST:$S3_PORT"
        nohup "$moto" -H "$HOST" -p "$S3_PORT" </dev/null >"$S3_LOG" 2>&1 &
        pid=$!
        echo "$pid" >"$S3_PID_FILE"
    fi
    until s3_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$S3_LOG" >&2 || true
            rm -f "$S3_PID_FILE"
            die "moto exited (log above, full log: $S3_LOG)"
        fi
        (( waited++ < WAIT_SECONDS * 2 )) || die "moto on $HOST:$S3_PORT does not answer" \
            "after ${WAIT_SECONDS}s; see $S3_LOG"
        sleep 0.5
    done
    log "S3 ready: http://$HOST:$S3_PORT"
}

stop_s3() {
    local pid waited=0
    if ! pid="$(s3_pid)"; then
        log "moto not running"
        rm -f "$S3_PID_FILE"
        return 0
    fi
    log "stopping moto (pid $pid)"
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if (( waited++ >= 20 )); then
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$S3_PID_FILE"
}

# --- Redis -----------------------------------------------------------------------------------

# Returns 1 (after a warning) when redis-server is missing and cannot be installed: the Redis
# tests then skip (`env` prints no Redis URL) while PostgreSQL and S3 still run; CI runs as root.
ensure_redis_bin() {
    command -v redis-server >/dev/null && return
    if ! is_root; then
        log "warning: redis-server not found on PATH; the Redis tests will skip (install it:" \
            "apt-get install redis-server, or run as root)"
        return 1
    fi
    log "installing redis-server with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
    command -v redis-server >/dev/null || die "apt-get installed redis-server but it is not on PATH"
}

redis_pid() {
    local pid
    pid="$(cat "$REDIS_PID_FILE" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

redis_answers() {
    # A PING over a plain socket: redis-cli may be absent where only the server is installed.
    python3 - "$HOST" "$REDIS_PORT" <<'PY' >/dev/null 2>&1
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as conn:
    conn.sendall(b"PING\r\n")
    sys.exit(0 if conn.recv(16).startswith(b"+PONG") else 1)
PY
}

start_redis() {
    local pid waited=0
    ensure_redis_bin || return 0
    mkdir -p "$REDIS_DIR"
    if pid="$(redis_pid)"; then
        log "redis-server already running (pid $pid)"
    else
        if redis_answers; then
            die "something else already answers on $HOST:$REDIS_PORT; stop it or set LW_REDIS_PORT"
        fi
        log "starting redis-server on $HOST:$REDIS_PORT"
        # No persistence: it only ever holds test data; no daemonize, so $! is its pid.
        nohup redis-server --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
            --dir "$REDIS_DIR" --protected-mode yes </dev/null >"$REDIS_LOG" 2>&1 &
        pid=$!
        echo "$pid" >"$REDIS_PID_FILE"
    fi
    until redis_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$REDIS_LOG" >&2 || true
            rm -f "$REDIS_PID_FILE"
            die "redis-server exited (log above, full log: $REDIS_LOG)"
        fi
        (( waited++ < WAIT_SECONDS * 2 )) || die "redis-server on $HOST:$REDIS_PORT does not" \
            "answer after ${WAIT_SECONDS}s; see $REDIS_LOG"
        sleep 0.5
    done
    log "Redis ready: redis://$HOST:$REDIS_PORT/0"
}

stop_redis() {
    local pid waited=0
    if ! pid="$(redis_pid)"; then
        log "redis-server not running"
        rm -f "$REDIS_PID_FILE"
        return 0
    fi
    log "stopping redis-server (pid $pid)"
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if (( waited++ >= 20 )); then
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    rm -f "$REDIS_PID_FILE"
}

# --- Chromium (the dashboard's browser tests) -------------------------------------------------

find_chromium() {
    local name
    for name in chromium chromium-browser; do
        command -v "$name" && return
    done
    return 1
}

# Like Redis: a warning when it is missing and cannot be installed (the browser tests then skip,
# or fail under LOOPWRIGHT_TEST_REQUIRE_SERVICES=1). Playwright's own browser download is never
# used: it needs internet access beyond the package registries.
ensure_chromium() {
    find_chromium >/dev/null && return
    if ! is_root; then
        log "warning: chromium not found on PATH; the dashboard's browser tests will skip" \
            "(install it: apt-get install chromium, or run as root)"
        return 0
    fi
    log "installing chromium with apt-get"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; then
        log "warning: apt-get could not install chromium; the dashboard's browser tests will skip"
        return 0
    fi
    find_chromium >/dev/null || log "warning: apt-get installed chromium but it is not on PATH"
}

# --- commands --------------------------------------------------------------------------------

print_env() {
    echo "export LOOPWRIGHT_TEST_PG_URI=postgresql+psycopg://postgres@$HOST:$PG_PORT/postgres"
    echo "export LOOPWRIGHT_TEST_S3_ENDPOINT=http://$HOST:$S3_PORT"
    # Only when it runs: without redis-server (see ensure_redis_bin) its tests skip.
    if redis_answers; then
        echo "export LOOPWRIGHT_TEST_REDIS_URL=redis://$HOST:$REDIS_PORT/0"
    fi
    local chromium
    if chromium="$(find_chromium)"; then
        echo "export LOOPWRIGHT_TEST_CHROMIUM=$chromium"
    fi
}

status() {
    local ok=0
    if PG_BIN="$(find_pg_bin)" && pg_ready; then
        echo "postgres: ready on $HOST:$PG_PORT"
    else
        echo "postgres: not running"
        ok=1
    fi
    if s3_answers; then echo "s3: ready on $HOST:$S3_PORT"; else echo "s3: not running"; ok=1; fi
    if redis_answers; then
        echo "redis: ready on $HOST:$REDIS_PORT"
    else
        echo "redis: not running"
        ok=1
    fi
    return "$ok"
}

main() {
    case "${1:-}" in
        start) init_state_dir; start_postgres; start_s3; start_redis; ensure_chromium ;;
        stop) init_state_dir; stop_redis; stop_s3; stop_postgres ;;
        env) print_env ;;
        status) init_state_dir; status ;;
        *) die "usage: $0 start|stop|env|status" ;;
    esac
}

main "$@"
