# shellcheck shell=bash
# Sourced by bin/test.sh: real PostgreSQL and Redis servers on loopback for the tests that need them.
#
# start_test_servers: installs postgresql / redis-server from Debian when missing (root + apt-get, as
# for chromium), starts each on a free loopback port with its data in a temp dir, and exports
# TEST_DATABASE_URL, TEST_REDIS_URL and AIPROXY_REQUIRE_SERVERS=1 (tests that need a server then fail
# instead of skipping). stop_test_servers: stops both and removes the temp dir (bin/test.sh traps it).
# PostgreSQL refuses to run as root: as root, initdb/pg_ctl run as the postgres user (runuser).

_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_ensure_server_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test servers: installing ${missing[*]}" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 \
      || echo "test servers: could not install ${missing[*]}" >&2
  fi
}

start_test_servers() {
  _ensure_server_packages
  TEST_SERVERS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/aiproxy-test-servers.XXXXXX")"
  chmod 755 "$TEST_SERVERS_DIR"
  export TEST_SERVERS_DIR AIPROXY_REQUIRE_SERVERS=1

  local redis_port; redis_port="$(_free_port)"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize yes \
    --dir "$TEST_SERVERS_DIR" --pidfile "$TEST_SERVERS_DIR/redis.pid" --logfile "$TEST_SERVERS_DIR/redis.log" \
    && export TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0" \
    || echo "test servers: redis-server did not start (see $TEST_SERVERS_DIR/redis.log)" >&2

  local pg_bin; pg_bin="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
  local as=() pg_port; pg_port="$(_free_port)"
  mkdir -p "$TEST_SERVERS_DIR/pg"
  if [ "$(id -u)" = "0" ]; then
    local pg_user=postgres
    id "$pg_user" >/dev/null 2>&1 || pg_user=nobody
    chown "$pg_user" "$TEST_SERVERS_DIR/pg"
    as=(runuser -u "$pg_user" --)
  fi
  if [ -n "$pg_bin" ] \
    && "${as[@]}" "$pg_bin/initdb" -D "$TEST_SERVERS_DIR/pg/data" -U aiproxy --auth=trust -E UTF8 >/dev/null 2>&1 \
    && "${as[@]}" "$pg_bin/pg_ctl" -D "$TEST_SERVERS_DIR/pg/data" -l "$TEST_SERVERS_DIR/pg/server.log" -w -t 30 \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $TEST_SERVERS_DIR/pg -c fsync=off -c max_connections=200" \
      start >/dev/null; then
    export TEST_DATABASE_URL="postgresql+psycopg://aiproxy@127.0.0.1:$pg_port/postgres"
  else
    echo "test servers: PostgreSQL did not start (see $TEST_SERVERS_DIR/pg/server.log)" >&2
  fi
  TEST_SERVERS_AS=("${as[@]}")
  TEST_SERVERS_PG_BIN="$pg_bin"
}

stop_test_servers() {
  [ -n "${TEST_SERVERS_DIR:-}" ] || return 0
  if [ -f "$TEST_SERVERS_DIR/pg/data/postmaster.pid" ]; then
    "${TEST_SERVERS_AS[@]}" "$TEST_SERVERS_PG_BIN/pg_ctl" -D "$TEST_SERVERS_DIR/pg/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  if [ -f "$TEST_SERVERS_DIR/redis.pid" ]; then
    kill "$(cat "$TEST_SERVERS_DIR/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "$TEST_SERVERS_DIR"
  unset TEST_SERVERS_DIR
}
