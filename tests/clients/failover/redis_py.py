"""Failover writer: redis-py through redis.sentinel.Sentinel (see README.md)."""
import json
import signal
import sys
import time

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

PROFILES = {
    # only what discovery needs: no timeouts, the library's default retry
    "default": {"sentinel": {}, "master": {}},
    # short socket timeouts so a frozen or cut primary costs 250 ms, not forever;
    # the pool re-asks the sentinels on every new connection, and a few quick
    # retries hide the switch from the application
    "tuned": {
        "sentinel": {"socket_timeout": 0.25, "socket_connect_timeout": 0.25},
        "master": {"socket_timeout": 0.25, "socket_connect_timeout": 0.25,
                   "retry": "Retry(ConstantBackoff(0.05), 3)",
                   "retry_on_error": ["ConnectionError", "TimeoutError", "ReadOnlyError"]},
    },
}


def build(cfg, profile):
    p = PROFILES[profile]
    master_kw = dict(p["master"])
    if "retry" in master_kw:
        master_kw["retry"] = Retry(ConstantBackoff(0.05), 3)
        master_kw["retry_on_error"] = [redis.exceptions.ConnectionError,
                                       redis.exceptions.TimeoutError,
                                       redis.exceptions.ReadOnlyError]
    sentinel = Sentinel([tuple(a) for a in cfg["sentinels"]],
                        sentinel_kwargs=dict(p["sentinel"]), **p["sentinel"])
    return sentinel.master_for(cfg["master"], **master_kw)


def used_address(client):
    """The connection the last command went through: redis-py puts it back at
    the end of the pool's free list."""
    try:
        conn = client.connection_pool._available_connections[-1]
        return "%s:%s" % (conn.host, conn.port)
    except (AttributeError, IndexError):
        return None


def main():
    cfg = json.loads(sys.argv[1])
    profile = cfg.get("profile", "tuned")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    emit({"ev": "start", "client": "redis-py", "version": redis.__version__,
          "profile": profile, "settings": PROFILES[profile]})
    master = build(cfg, profile)
    end = time.time() + cfg.get("max_seconds", 120)
    seq = 0
    while time.time() < end:
        seq += 1
        key = "%s%d" % (cfg["prefix"], seq)
        line = {"ev": "w", "seq": seq}
        try:
            master.set(key, seq)
        except Exception as exc:  # what the application sees, whatever it is
            line.update(t=time.time(), ok=False, err=describe(exc))
        else:
            line.update(t=time.time(), ok=True, addr=used_address(master))
            try:
                line["wait"] = master.wait(1, cfg.get("wait_timeout_ms", 100))
            except Exception as exc:
                line.update(wait=None, werr=describe(exc))
        emit(line)
        time.sleep(cfg.get("interval_ms", 10) / 1000)


def describe(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
