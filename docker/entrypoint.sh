#!/bin/sh
# hakv-entrypoint node|sentinel|<command...>
#
# node      hakv-server /data/hakv.conf      (template: /etc/hakv/node.conf)
# sentinel  hakv-sentinel /data/sentinel.conf (template: /etc/hakv/sentinel.conf)
# anything else is run as is (e.g. `hakv watch ...`, `python -c ...`).
#
# The config is written once, on the first start, into the volume (/data): afterwards
# the process owns it (CONFIG REWRITE, the sentinel's state), so a restarted container
# keeps its role, its data and its sentinel identity. `docker compose down -v` resets.
#
# Environment (set per service in compose.yaml):
#   HAKV_NAME            this member's service name: what it announces to its peers
#   HAKV_REPLICAOF       "host port" of the primary to follow at first start (nodes)
#   HAKV_MONITOR         "host port" of the primary to monitor at first start (sentinels)
#   HAKV_MASTER_NAME     the sentinels' name for the primary (mymaster)
#   HAKV_QUORUM, HAKV_DOWN_AFTER_MS, HAKV_FAILOVER_TIMEOUT_MS
#   HAKV_AUTH_USER, HAKV_AUTH_PASS  the user a sentinel logs in to the nodes with
set -eu

role=${1:-node}
name=${HAKV_NAME:-$(hostname)}
master=${HAKV_MASTER_NAME:-mymaster}

case "$role" in
node)
    conf=/data/hakv.conf
    if [ ! -f "$conf" ]; then
        {
            cat /etc/hakv/node.conf
            echo "# ---- written by hakv-entrypoint on the first start of $name"
            # Announce the service name, not the container IP: the IP changes when the
            # container restarts and the primary's INFO is where sentinels learn replicas.
            echo "replica-announce-ip $name"
            if [ -n "${HAKV_REPLICAOF:-}" ]; then
                echo "replicaof $HAKV_REPLICAOF"
            fi
        } > "$conf.tmp"
        mv "$conf.tmp" "$conf"
    fi
    exec hakv-server "$conf"
    ;;
sentinel)
    conf=/data/sentinel.conf
    if [ ! -f "$conf" ]; then
        {
            cat /etc/hakv/sentinel.conf
            echo "# ---- written by hakv-entrypoint on the first start of $name"
            echo "sentinel announce-ip $name"
            echo "sentinel monitor $master ${HAKV_MONITOR:-node1 6379} ${HAKV_QUORUM:-2}"
            echo "sentinel down-after-milliseconds $master ${HAKV_DOWN_AFTER_MS:-1000}"
            echo "sentinel failover-timeout $master ${HAKV_FAILOVER_TIMEOUT_MS:-10000}"
            echo "sentinel parallel-syncs $master 1"
            # After the monitor line: these name the master.
            if [ -n "${HAKV_AUTH_USER:-}" ]; then
                echo "sentinel auth-user $master $HAKV_AUTH_USER"
            fi
            if [ -n "${HAKV_AUTH_PASS:-}" ]; then
                echo "sentinel auth-pass $master $HAKV_AUTH_PASS"
            fi
        } > "$conf.tmp"
        mv "$conf.tmp" "$conf"
    fi
    exec hakv-sentinel "$conf"
    ;;
*)
    exec "$@"
    ;;
esac
