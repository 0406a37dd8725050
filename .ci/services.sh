#!/usr/bin/env bash
# Makes sure Redis, PostgreSQL and nats-server (JetStream) run on 127.0.0.1 for the store
# tests: checks each, installs the Debian package if it is missing, starts it if it is not
# running, and waits until it answers. Source it (or run it, then export the variable) so the
# tests fail instead of skipping when a server is absent:
#   . .ci/services.sh && SHARDFOLD_REQUIRE_SERVICES=1 cargo test --all-features
set -euo pipefail

apt_updated=0
need_pkg() { # need_pkg BINARY PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for NAME CHECK...
  local name=$1; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then echo "services: $name ready"; return 0; fi
    sleep 0.1
  done
  echo "services: $name did not become ready" >&2; return 1
}

# --- Redis 127.0.0.1:6379 ---
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  need_pkg redis-server redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
wait_for redis sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'

# --- PostgreSQL 127.0.0.1:5432, trust auth, database test ---
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  need_pkg pg_ctlcluster postgresql
  ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$ver" ]; then # no cluster yet: create one (initdb runs as postgres)
    ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
    su postgres -c "pg_createcluster $ver main -- --auth=trust" >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
fi
wait_for postgres pg_isready -h 127.0.0.1 -p 5432 -q
psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" \
  | grep -q 1 || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"

# --- nats-server 127.0.0.1:4222 with JetStream ---
if ! port_open 4222; then
  need_pkg nats-server nats-server
  mkdir -p /var/lib/nats-server
  # its own pidfile: without one, start-stop-daemon takes the 4223 server (same executable)
  # for this one and starts nothing
  start-stop-daemon --start --background --make-pidfile --pidfile /run/shardfold-nats.pid \
    --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
fi
wait_for nats port_open 4222


# --- a second nats-server, 127.0.0.1:4223, max_payload 8 MB, for the ≥ 1 MiB value test ---
# (the default max_payload of 1 MiB caps KV values below 1 MiB; see README.md, Testing)
if ! port_open 4223; then
  mkdir -p /tmp/shardfold-nats-big
  cat > /tmp/shardfold-nats-big/nats.conf <<'CONF'
listen: 127.0.0.1:4223
max_payload: 8MB
jetstream { store_dir: "/tmp/shardfold-nats-big/js" }
CONF
  start-stop-daemon --start --background --make-pidfile --pidfile /tmp/shardfold-nats-big/pid \
    --exec /usr/sbin/nats-server -- -c /tmp/shardfold-nats-big/nats.conf -l /tmp/shardfold-nats-big/log
fi
wait_for nats-8mb port_open 4223


# --- Redis over TLS, 127.0.0.1:6380, a throw-away CA in /tmp/shardfold-redis-tls ---
tls=/tmp/shardfold-redis-tls
if ! port_open 6380; then
  mkdir -p "$tls"
  need_pkg openssl openssl
  if [ ! -f "$tls/ca.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=shardfold-test-ca \
      -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
      -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$tls/san.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 3650 -extfile "$tls/san.ext" -out "$tls/server.crt" 2>/dev/null
  fi
  redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port 6380 \
    --tls-cert-file "$tls/server.crt" --tls-key-file "$tls/server.key" \
    --tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients no --save "" --appendonly no \
    --dir "$tls" --logfile "$tls/redis.log" --pidfile "$tls/redis.pid"
fi
wait_for redis-tls port_open 6380
export SHARDFOLD_REDIS_CA="$tls/ca.crt"

# --- PostgreSQL over TLS, 127.0.0.1:5433, TLS only, a throw-away CA in /tmp/shardfold-pg-tls ---
# A second cluster ("tls") beside main: ssl = on, and pg_hba.conf holds a single hostssl line, so
# plain connections are refused. other-ca.crt is a second CA that signed nothing the server
# shows, for the unknown-CA test.
pgtls=/tmp/shardfold-pg-tls
pgtls_ready() { psql "host=127.0.0.1 port=5433 user=postgres dbname=postgres sslmode=require" -Atc 'SELECT 1'; }
if ! pgtls_ready >/dev/null 2>&1; then
  need_pkg openssl openssl
  need_pkg pg_ctlcluster postgresql
  mkdir -p "$pgtls" && chmod 755 "$pgtls"
  if [ ! -f "$pgtls/server.crt" ] || [ ! -f "$pgtls/other-ca.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=shardfold-pg-test-ca \
      -keyout "$pgtls/ca.key" -out "$pgtls/ca.crt" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=shardfold-pg-other-ca \
      -keyout "$pgtls/other-ca.key" -out "$pgtls/other-ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
      -keyout "$pgtls/server.key" -out "$pgtls/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$pgtls/san.ext"
    openssl x509 -req -in "$pgtls/server.csr" -CA "$pgtls/ca.crt" -CAkey "$pgtls/ca.key" \
      -CAcreateserial -days 3650 -extfile "$pgtls/san.ext" -out "$pgtls/server.crt" 2>/dev/null
  fi
  chown postgres "$pgtls/server.key" "$pgtls/server.crt" && chmod 600 "$pgtls/server.key"
  pgver=$(ls /usr/lib/postgresql | sort -V | tail -1)
  if [ ! -d "/etc/postgresql/$pgver/tls" ]; then
    pg_createcluster --user postgres "$pgver" tls -p 5433 -- --auth=trust >/dev/null
  fi
  conf=/etc/postgresql/$pgver/tls
  sed -i '/^# shardfold-tls$/,$d' "$conf/postgresql.conf"
  cat >> "$conf/postgresql.conf" <<CONF
# shardfold-tls
port = 5433
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = '$pgtls/server.crt'
ssl_key_file = '$pgtls/server.key'
CONF
  printf 'hostssl all all 127.0.0.1/32 trust\n' > "$conf/pg_hba.conf"
  pg_ctlcluster --skip-systemctl-redirect "$pgver" tls stop >/dev/null 2>&1 || true
  pg_ctlcluster --skip-systemctl-redirect "$pgver" tls start
fi
wait_for postgres-tls pgtls_ready
psql "host=127.0.0.1 port=5433 user=postgres dbname=postgres sslmode=require" -Atc \
  "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql "host=127.0.0.1 port=5433 user=postgres dbname=postgres sslmode=require" -qc "CREATE DATABASE test"
export SHARDFOLD_PG_CA="$pgtls/ca.crt"
export SHARDFOLD_POSTGRES_TLS_URL="postgres://postgres@localhost:5433/test?sslmode=verify-full&sslrootcert=$pgtls/ca.crt"

# --- more servers, one file each (S3/DynamoDB emulators, Redis Cluster, ...) ---
for f in "$(dirname "${BASH_SOURCE[0]}")"/services.d/*.sh; do
  [ -e "$f" ] && . "$f"
done

export SHARDFOLD_REQUIRE_SERVICES=1
