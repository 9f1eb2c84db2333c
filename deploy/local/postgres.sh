#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks, under .local/postgres (ignored by git).
#   deploy/local/postgres.sh start|stop|status|url|bindir
# Installs Debian's postgresql if no server binaries are found. Listens on 127.0.0.1 only,
# port 55432 (THROUGHLINE_PG_PORT overrides). Trust auth: test data only, loopback only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE="$ROOT/.local/postgres"
DATA="$BASE/data"
RUN="$BASE/run"
LOGDIR="$BASE/log"
LOG="$LOGDIR/postgres.log"
PIDFILE="$BASE/postgres.pid"
PORT="${THROUGHLINE_PG_PORT:-55432}"
HOST=127.0.0.1
ROLE=throughline
DB=throughline
URL="postgresql+asyncpg://$ROLE:$ROLE@$HOST:$PORT/$DB"

say() { echo "postgres: $*"; }
die() { echo "postgres: ERROR: $*" >&2; exit 1; }

find_bindir() {
    local d
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

install_server() {
    [[ $EUID -eq 0 ]] || die "no PostgreSQL server binaries; run as root or: apt-get install postgresql"
    mkdir -p "$ROOT/.local"
    # One apt at a time (kafka.sh may be installing too); 'apt-get update' once per hour at most.
    (
        flock -w 900 8 || die "timed out waiting for the apt lock"
        if ! find_bindir >/dev/null; then
            local stamp="$ROOT/.local/apt-updated"
            if [[ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]]; then
                say "apt-get update"
                apt-get update -qq >>"$ROOT/.local/apt.log" 2>&1 \
                    || { tail -20 "$ROOT/.local/apt.log" >&2; die "apt-get update failed"; }
                touch "$stamp"
            fi
            say "installing Debian's postgresql package (log: .local/apt.log)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                postgresql >>"$ROOT/.local/apt.log" 2>&1 \
                || { tail -20 "$ROOT/.local/apt.log" >&2; die "apt-get install postgresql failed"; }
        fi
    ) 8>"$ROOT/.local/apt.lock"
}

BIN="$(find_bindir || true)"

# Run a server-side command as the cluster's owner: postgres refuses to run as root.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

psql_app() {
    "$BIN/psql" -X -q -At -h "$HOST" -p "$PORT" -U "$ROLE" -d "$DB" -v ON_ERROR_STOP=1 "$@"
}

# pg_ctl status alone counts a killed postmaster that is not yet reaped (a zombie) as running.
running() {
    [[ -n "$BIN" && -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1 \
        && [[ "$(ps -o stat= -p "$(postmaster_pid)" 2>/dev/null)" != Z* ]]
}

ready() {
    "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -d "$DB" -U "$ROLE" -t 2 \
        && [[ "$(psql_app -c 'select 1' 2>/dev/null)" == 1 ]]
}

postmaster_pid() { head -1 "$DATA/postmaster.pid" 2>/dev/null || true; }

ensure_owner_user() {
    [[ $EUID -eq 0 ]] || return 0
    id -u postgres >/dev/null 2>&1 \
        || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    as_owner test -x "$BASE" \
        || die "user postgres cannot reach $BASE (a parent folder is not searchable by others)"
}

init_cluster() {
    [[ -f "$DATA/PG_VERSION" ]] && return 0
    say "initdb in $DATA"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [[ $EUID -eq 0 ]] && chown postgres: "$DATA"
    chmod 700 "$DATA"
    local locale=C
    locale -a 2>/dev/null | grep -qix 'c.utf-\?8' && locale=C.UTF-8
    as_owner "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale="$locale" \
        --auth-local=trust --auth-host=trust --data-checksums --no-instructions >"$LOGDIR/initdb.log" 2>&1 \
        || { tail -20 "$LOGDIR/initdb.log" >&2; die "initdb failed"; }
    echo "include_if_exists = 'throughline.conf'" >>"$DATA/postgresql.conf"
}

write_config() {
    # Rewritten at every start so that THROUGHLINE_PG_PORT and edits here take effect.
    cat >"$DATA/throughline.conf" <<EOF
# Written by deploy/local/postgres.sh; edits here are overwritten.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$RUN'
max_connections = 200
shared_buffers = 512MB
effective_cache_size = 4GB
work_mem = 16MB
maintenance_work_mem = 256MB
wal_buffers = 16MB
max_wal_size = 2GB
checkpoint_timeout = 15min
# Durability stays as in production: tests check crash safety and benchmarks must be honest.
fsync = on
synchronous_commit = on
full_page_writes = on
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
    cat >"$DATA/pg_hba.conf" <<EOF
# Written by deploy/local/postgres.sh: a loopback-only cluster for tests.
local all all               trust
host  all all 127.0.0.1/32  trust
host  all all ::1/128       trust
EOF
    [[ $EUID -eq 0 ]] && chown postgres: "$DATA/throughline.conf" "$DATA/pg_hba.conf"
    return 0
}

ensure_role_and_db() {
    local su=("$BIN/psql" -X -q -At -h "$RUN" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
    "${su[@]}" -c "do \$\$ begin
        if not exists (select from pg_roles where rolname = '$ROLE') then
            create role $ROLE login superuser password '$ROLE';
        end if; end \$\$;" \
        || die "could not create role $ROLE"
    if [[ "$("${su[@]}" -c "select 1 from pg_database where datname = '$DB'")" != 1 ]]; then
        "${su[@]}" -c "create database $DB owner $ROLE" || die "could not create database $DB"
    fi
}

port_holder() {
    command -v ss >/dev/null && ss -Hltnp "sport = :$PORT" 2>/dev/null | head -1
}

start() {
    [[ -n "$BIN" ]] || { install_server; BIN="$(find_bindir)" || die "no server binaries after install"; }
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock"
    flock -w 120 9 || die "another postgres.sh holds $BASE/.lock"
    if running && ready; then
        postmaster_pid >"$PIDFILE"
        say "ready at $URL (pid $(postmaster_pid), already running)"
        return 0
    fi
    ensure_owner_user
    mkdir -p "$RUN" "$LOGDIR"
    [[ $EUID -eq 0 ]] && chown postgres: "$RUN" "$LOGDIR"
    init_cluster
    write_config
    if ! running; then
        local holder
        holder="$(port_holder || true)"
        [[ -z "$holder" ]] || die "port $PORT is taken by another process: $holder"
        # 9>&- : the server must not inherit (and hold forever) our lock.
        as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 90 -s 9>&- \
            || { tail -30 "$LOG" >&2; die "server did not start (log: $LOG)"; }
    elif ! ready; then
        # Running but not answering here, e.g. still on an older port: apply the config.
        say "restarting pid $(postmaster_pid) to apply $DATA/throughline.conf"
        as_owner "$BIN/pg_ctl" restart -D "$DATA" -l "$LOG" -m fast -w -t 90 -s 9>&- \
            || { tail -30 "$LOG" >&2; die "server did not restart (log: $LOG)"; }
    fi
    ensure_role_and_db
    for _ in $(seq 1 60); do
        ready && break
        sleep 0.5
    done
    ready || { tail -30 "$LOG" >&2; die "server runs but does not answer 'select 1' (log: $LOG)"; }
    postmaster_pid >"$PIDFILE"
    say "ready at $URL (pid $(postmaster_pid), $(psql_app -c 'show server_version'))"
}

stop() {
    if [[ -d "$BASE" ]]; then
        exec 9>"$BASE/.lock"
        flock -w 120 9 || die "another postgres.sh holds $BASE/.lock"
    fi
    if running; then
        say "stopping pid $(postmaster_pid)"
        as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 -s 9>&- || die "pg_ctl stop failed"
    fi
    rm -f "$PIDFILE"
    say "stopped"
}

status() {
    if [[ -n "$BIN" ]] && running && ready; then
        say "running at $URL (pid $(postmaster_pid), data $DATA)"
    elif [[ -n "$BIN" ]] && running; then
        say "running (pid $(postmaster_pid)) but not answering at $URL"
        return 1
    else
        say "stopped"
        return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    url) echo "$URL" ;;
    bindir) [[ -n "$BIN" ]] && echo "$BIN" ;;
    *) echo "usage: $0 start|stop|status|url|bindir" >&2; exit 2 ;;
esac
