"""The status table: what every node and sentinel of a topology says now."""

from __future__ import annotations

from hakv.lab.rpc import RpcError, call, parse_info


def node_row(port: int) -> dict:
    try:
        info = parse_info(call("127.0.0.1", port, "INFO", "replication", timeout=0.5))
        keys = call("127.0.0.1", port, "DBSIZE", timeout=0.5)
    except (OSError, RpcError) as exc:
        return {"port": port, "role": "down", "detail": _short(exc)}
    role = info.get("role", "?")
    row = {"port": port, "role": role, "keys": keys}
    if role == "master":
        row["offset"] = int(info.get("master_repl_offset", 0))
        row["detail"] = "%s replica(s)" % info.get("connected_slaves", "0")
        row["replicas"] = {}
        for k, v in info.items():
            if k.startswith("slave") and "=" in v:
                f = dict(kv.split("=", 1) for kv in v.split(","))
                row["replicas"][int(f.get("port", 0))] = int(f.get("offset", 0))
    else:
        row["offset"] = int(info.get("slave_repl_offset", 0))
        row["detail"] = "of %s:%s link %s" % (info.get("master_host"), info.get("master_port"),
                                              info.get("master_link_status"))
    return row


def sentinel_row(port: int, master_name: str) -> dict:
    try:
        addr = call("127.0.0.1", port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name,
                    timeout=0.5)
        master = call("127.0.0.1", port, "SENTINEL", "MASTER", master_name, timeout=0.5)
    except (OSError, RpcError) as exc:
        return {"port": port, "sees": "down", "detail": _short(exc)}
    fields = dict(zip(master[::2], master[1::2])) if isinstance(master, list) else {}
    g = lambda k: fields.get(k.encode(), b"?").decode()  # noqa: E731
    sees = "%s:%s" % (addr[0].decode(), addr[1].decode()) if addr else "?"
    return {
        "port": port, "sees": sees, "flags": g("flags"), "epoch": g("config-epoch"),
        "replicas": g("num-slaves"), "sentinels": int(g("num-other-sentinels") or 0) + 1
        if g("num-other-sentinels").isdigit() else "?",
    }


def table(topo) -> str:
    rows = [node_row(m.port) for m in topo.nodes]
    masters = [r for r in rows if r["role"] == "master"]
    top = max((r.get("offset", 0) for r in rows), default=0)
    lines = ["%-10s %-6s %-8s %12s %8s %7s  %s"
             % ("NODE", "PORT", "ROLE", "OFFSET", "LAG", "KEYS", "DETAIL")]
    for m, r in zip(topo.nodes, rows):
        lag = "" if r["role"] in ("down", "master") else str(top - r.get("offset", 0))
        lines.append("%-10s %-6d %-8s %12s %8s %7s  %s" % (
            m.name, r["port"], r["role"], r.get("offset", ""), lag, r.get("keys", ""),
            r.get("detail", "")))
    lines.append("")
    lines.append("%-10s %-6s %-22s %-22s %6s %9s %10s"
                 % ("SENTINEL", "PORT", "PRIMARY IT SEES", "FLAGS", "EPOCH", "REPLICAS",
                    "SENTINELS"))
    for m in topo.sentinels:
        s = sentinel_row(m.port, topo.master_name)
        lines.append("%-10s %-6d %-22s %-22s %6s %9s %10s" % (
            m.name, s["port"], s["sees"], s.get("flags", s.get("detail", "")),
            s.get("epoch", ""), s.get("replicas", ""), s.get("sentinels", "")))
    if len(masters) > 1:
        lines.append("")
        lines.append("WARNING: %d nodes report role master" % len(masters))
    return "\n".join(lines)


def _short(exc) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:40]
