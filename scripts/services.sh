#!/usr/bin/env bash
# Starts (or stops) the servers the integration tests talk to: PostgreSQL and
# Redis from Debian's packages, on loopback only, on fixed non-default ports
# so they cannot clash with a system-wide instance, with throw-away data
# under $FERROLOOP_SERVICES_DIR. Installs the packages first if missing, so
# it works on a fresh Debian 12 machine (must run as root, as CI does).
#
# Usage: scripts/services.sh start|stop
# Environment (the tests read the same variables, with the same defaults):
#   FERROLOOP_PG_PORT=55432  FERROLOOP_REDIS_PORT=56379
#   FERROLOOP_SERVICES_DIR=/tmp/ferroloop-services
# PostgreSQL: database ferroloop_test, user ferroloop, password ferroloop,
# password (SCRAM) authentication over TCP, TLS offered (self-signed).
set -euo pipefail

pg_port="${FERROLOOP_PG_PORT:-55432}"
redis_port="${FERROLOOP_REDIS_PORT:-56379}"
base="${FERROLOOP_SERVICES_DIR:-/tmp/ferroloop-services}"
pg_data="$base/pg/data"
pg_sock="$base/pg/sock"
redis_dir="$base/redis"

log() { echo "services: $*" >&2; }

pg_bin() {
    # The newest PostgreSQL major version Debian installed (bookworm: 15).
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && echo "$dir"
}

install_packages() {
    local missing=()
    pg_bin >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v openssl >/dev/null || missing+=(openssl)
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

as_postgres() { runuser -u postgres -- "$@"; }

start_postgres() {
    local bin
    bin=$(pg_bin)
    mkdir -p "$pg_data" "$pg_sock"
    # A self-signed certificate, so clients can also connect with TLS
    # (asyncpg's STARTTLS-like upgrade of the connection).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$base/pg/server.key" -out "$base/pg/server.crt" -days 30 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
    chown -R postgres:postgres "$base/pg"
    chmod 700 "$pg_data"
    chmod 600 "$base/pg/server.key"
    # Local (unix socket) connections are trusted so this script can set up
    # the test role; TCP connections need the password, as asyncpg sends it.
    as_postgres "$bin/initdb" -D "$pg_data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$base/pg/initdb.log"
    # Durability is pointless for throw-away test data; turning it off keeps
    # the tests fast on a shared, slow disk.
    # On failure the server's log is shown: stopping deletes it.
    as_postgres "$bin/pg_ctl" -D "$pg_data" -l "$base/pg/server.log" -w -t 60 \
        -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $pg_sock" \
        -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        -o "-c ssl=on -c ssl_cert_file=$base/pg/server.crt -c ssl_key_file=$base/pg/server.key" \
        start >/dev/null || {
        log "PostgreSQL did not start; its log:"
        cat "$base/pg/server.log" >&2 || true
        return 1
    }
    as_postgres psql -q -h "$pg_sock" -p "$pg_port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE ROLE ferroloop LOGIN PASSWORD 'ferroloop';
CREATE DATABASE ferroloop_test OWNER ferroloop;
SQL
    log "PostgreSQL listening on 127.0.0.1:$pg_port"
}

start_redis() {
    mkdir -p "$redis_dir"
    # No persistence (save "", no AOF): the data is thrown away at stop.
    redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes \
        --dir "$redis_dir" --pidfile "$redis_dir/redis.pid" \
        --logfile "$redis_dir/redis.log" --save "" --appendonly no
    local tries
    for tries in $(seq 100); do
        redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
        [ "$tries" -eq 100 ] && { log "redis did not answer"; cat "$redis_dir/redis.log" >&2; return 1; }
        sleep 0.1
    done
    log "Redis listening on 127.0.0.1:$redis_port"
}

stop_services() {
    local bin
    if [ -f "$pg_data/postmaster.pid" ] && bin=$(pg_bin); then
        as_postgres "$bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null || true
    fi
    if [ -f "$redis_dir/redis.pid" ] && command -v redis-cli >/dev/null; then
        redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
        # Wait for the pid to go away so a following start can bind the port.
        local pid tries
        pid=$(cat "$redis_dir/redis.pid" 2>/dev/null || true)
        for tries in $(seq 100); do
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # Only what start made, in case FERROLOOP_SERVICES_DIR points somewhere shared.
    rm -rf "$base/pg" "$base/redis"
    rmdir "$base" 2>/dev/null || true
}

case "${1:-}" in
start)
    install_packages
    stop_services # leftovers of an earlier run that was not stopped
    mkdir -p "$base"
    chmod 755 "$base"
    start_postgres
    start_redis
    ;;
stop)
    stop_services
    log "stopped"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
