# Sourced by .ci/services.sh (which defines need_pkg, port_open, wait_for). A real 3-master
# Redis Cluster on 127.0.0.1:7000-7002 for the `redis+cluster://` backend, no replicas, nothing
# persisted: each node runs from its own directory under /tmp/shardfold-redis-cluster (its
# nodes.conf, log and pidfile). Idempotent: a cluster whose three nodes already answer
# `cluster_state:ok` is left alone; nodes that run but are not one healthy cluster (a run that
# crashed halfway through `--cluster create`) are reset (FLUSHALL + CLUSTER RESET HARD) and the
# cluster is created again.

rc_dir=/tmp/shardfold-redis-cluster
rc_ports="7000 7001 7002"

rc_cli() { redis-cli -h 127.0.0.1 -p "$@"; }
rc_state_ok() { rc_cli "$1" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'; }
rc_all_ok() {
  local p
  for p in $rc_ports; do rc_state_ok "$p" || return 1; done
}
# One cluster of three masters: every node knows the other two (CLUSTER NODES lists 3 masters).
rc_formed() {
  local p
  for p in $rc_ports; do
    [ "$(rc_cli "$p" cluster nodes 2>/dev/null | grep -c master)" = 3 ] || return 1
  done
}

if ! { rc_all_ok && rc_formed; }; then
  need_pkg redis-server redis-server
  for p in $rc_ports; do
    if ! port_open "$p"; then
      mkdir -p "$rc_dir/$p"
      # a node that crashed keeps a nodes.conf naming a cluster that no longer exists
      rm -f "$rc_dir/$p/nodes.conf"
      redis-server --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
        --cluster-config-file "$rc_dir/$p/nodes.conf" --cluster-node-timeout 5000 \
        --daemonize yes --save "" --appendonly no --dir "$rc_dir/$p" \
        --logfile "$rc_dir/$p/redis.log" --pidfile "$rc_dir/$p/redis.pid"
    fi
  done
  for p in $rc_ports; do wait_for "redis-cluster-node-$p" sh -c "redis-cli -h 127.0.0.1 -p $p ping | grep -q PONG"; done
  if ! { rc_all_ok && rc_formed; }; then
    # half-created, or the nodes belong to different clusters: start over
    for p in $rc_ports; do
      rc_cli "$p" flushall >/dev/null 2>&1 || true
      rc_cli "$p" cluster reset hard >/dev/null
    done
    redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 \
      --cluster-replicas 0 --cluster-yes >"$rc_dir/create.log" 2>&1 \
      || { cat "$rc_dir/create.log" >&2; false; }
  fi
fi
# `--cluster create` returns before every node has heard of every slot assignment
wait_for redis-cluster sh -c 'for p in 7000 7001 7002; do redis-cli -h 127.0.0.1 -p $p cluster info | tr -d "\r" | grep -qx cluster_state:ok || exit 1; done'
export SHARDFOLD_REDIS_CLUSTER_URL=redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
