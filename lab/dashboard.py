"""`hakv dashboard`: the topology live in a browser, with buttons for the faults.

A small HTTP/1.1 server on 127.0.0.1 written on the standard library's
asyncio alone, around the same `Observer` as `hakv watch`:

  GET  /             the page (HTML, CSS and JS inline: PAGE below)
  GET  /api/state    the topology now (JSON): nodes, roles, offsets, lag,
                     what each sentinel believes, partitions, probe writes
  GET  /api/events   Server-Sent Events: "state" every half second, "timeline"
                     for every event (sentinel events, role changes, faults)
  POST /api/fault    {"verb": "kill", "member": "node1" | "primary" | port}
                     -> {"ok": true, "event": "..."} (the fault is logged as by
                     `hakv fault`)
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from urllib.parse import parse_qs, urlsplit

from hakv.lab.faults import VERBS, FaultBackend, FaultError, open_backend
from hakv.lab.watch import Event, Observer

STATE_PERIOD = 0.5
BACKLOG = 300


class Dashboard:
    def __init__(self, backend: FaultBackend, probe: bool = False, poll_interval: float = 0.2):
        self.backend = backend
        self.observer = Observer(backend, on_event=self._on_event, probe=probe,
                                 poll_interval=poll_interval, max_events=5000)
        if self.observer.probe is not None:
            self.observer.probe.max_writes = 20000
        self.probe = probe
        self.clients: set[asyncio.Queue] = set()
        self.server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.Task | None = None

    # -- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 8080) -> int:
        await self.observer.start()
        if self.probe:
            self.observer.start_probe()
        self.server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self.server:
            self.server.close()
        for q in list(self.clients):
            q.put_nowait(None)
        await self.observer.stop()

    # -- the event stream

    def _broadcast(self, kind: str, payload: dict) -> None:
        data = "event: %s\ndata: %s\n\n" % (kind, json.dumps(payload))
        for q in list(self.clients):
            if q.qsize() < 1000:  # a stuck browser must not eat our memory
                q.put_nowait(data)

    def _on_event(self, ev: Event) -> None:
        self._broadcast("timeline", _event_json(ev))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(STATE_PERIOD)
            self._broadcast("state", self.observer.snapshot())

    # -- HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                url = urlsplit(target)
                if url.path == "/api/events" and method == "GET":
                    await self._events(writer)
                    return
                status, ctype, payload = await self._route(method, url, body)
                writer.write(("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                              "Cache-Control: no-store\r\n\r\n" % (status, ctype, len(payload))
                              ).encode() + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError):
            pass
        finally:
            writer.close()

    async def _route(self, method: str, url, body: bytes) -> tuple[str, str, bytes]:
        if url.path == "/" and method == "GET":
            page = PAGE.replace("__MASTER__", self.backend.master_name)
            return "200 OK", "text/html; charset=utf-8", page.encode()
        if url.path == "/api/state" and method == "GET":
            return "200 OK", "application/json", json.dumps(self.observer.snapshot()).encode()
        if url.path == "/api/fault" and method == "POST":
            try:
                args = json.loads(body) if body else {}
            except ValueError:
                args = {}
            query = parse_qs(url.query)
            verb = args.get("verb") or query.get("verb", [""])[0]
            member = str(args.get("member") or query.get("member", [""])[0])
            if verb not in VERBS or not member:
                return _json("400 Bad Request", {"ok": False, "error": "need verb and member"})
            loop = asyncio.get_running_loop()
            try:
                ev = await loop.run_in_executor(None, self.backend.apply, verb, member)
            except (FaultError, OSError, RuntimeError) as exc:
                return _json("409 Conflict", {"ok": False, "error": str(exc)})
            return _json("200 OK", {"ok": True, "event": str(ev), "member": ev.member,
                                    "verb": ev.verb, "at": ev.at})
        return "404 Not Found", "text/plain", b"not found\n"

    async def _events(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n")
        q: asyncio.Queue = asyncio.Queue()
        self.clients.add(q)
        try:
            # what happened before the page opened, then the present
            for ev in self.observer.events[-BACKLOG:]:
                writer.write(("event: timeline\ndata: %s\n\n" % json.dumps(_event_json(ev))
                              ).encode())
            writer.write(("event: state\ndata: %s\n\n" % json.dumps(self.observer.snapshot())
                          ).encode())
            await writer.drain()
            while True:
                try:
                    item = await asyncio.wait_for(q.get(), 15)
                except asyncio.TimeoutError:
                    item = ": keep-alive\n\n"
                if item is None:
                    break
                writer.write(item.encode())
                await writer.drain()
        finally:
            self.clients.discard(q)


def _json(status: str, obj: dict) -> tuple[str, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()


def _event_json(ev: Event) -> dict:
    return {"at": ev.at, "source": ev.source, "kind": ev.kind, "text": ev.text,
            "time": time.strftime("%H:%M:%S", time.localtime(ev.at)) + ".%03d"
            % int((ev.at % 1) * 1000)}


def cmd_dashboard(args) -> int:
    try:
        backend = open_backend(args.dir, args.compose)
    except FaultError as exc:
        print("hakv dashboard: %s" % exc, file=sys.stderr)
        return 1

    async def main() -> None:
        dash = Dashboard(backend, probe=args.probe)
        port = await dash.start("127.0.0.1", args.port)
        print("hakv dashboard on http://127.0.0.1:%d/ (Ctrl-C stops it)" % port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await dash.stop()

    try:
        asyncio.run(main())
    except OSError as exc:
        print("hakv dashboard: %s" % exc, file=sys.stderr)
        return 1
    finally:
        backend.close()
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("dashboard", help="the topology live in a browser, with fault buttons")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dir", default="hakv-data", help="a `hakv up` topology")
    where.add_argument("--compose", metavar="PROJECT", help="a Docker Compose project")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--probe", action="store_true",
                   help="also run the probe writer (writes hakv:probe:* keys)")
    p.set_defaults(func=cmd_dashboard)


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hakv dashboard: __MASTER__</title>
<style>
 body { font: 14px/1.4 system-ui, Helvetica, Arial, sans-serif; margin: 16px; color: #222; }
 h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 18px 0 6px; }
 table { border-collapse: collapse; } td, th { padding: 3px 10px; text-align: left; }
 th { font-weight: 600; border-bottom: 1px solid #ccc; } tr { border-bottom: 1px solid #eee; }
 .role { font-weight: 600; } .role.master { color: #fff; background: #1f5fa8; }
 .role.slave { background: #d6e6f5; } .role.down { background: #ddd; color: #666; }
 .cut { color: #c0392b; font-weight: 600; }
 button { font-size: 12px; margin: 0 1px; padding: 2px 6px; cursor: pointer; }
 #quick button { font-size: 14px; padding: 4px 12px; margin-right: 6px; }
 #events { font: 12px/1.35 monospace; max-height: 380px; overflow-y: auto; list-style: none;
           padding: 0; border: 1px solid #ddd; }
 #events li { padding: 1px 6px; border-bottom: 1px solid #f2f2f2; }
 #events li.fault { background: #fdecea; } #events li.sw { background: #e8f6ec; }
 #status { color: #555; } #action-result { margin-left: 8px; color: #555; }
</style></head>
<body>
<h1>hakv: <span id="master-name">__MASTER__</span></h1>
<div id="status">connecting...</div>
<h2>Faults</h2>
<div id="quick">
 <button id="kill-primary" data-verb="kill" data-member="primary">kill primary</button>
 <button id="stop-primary" data-verb="stop" data-member="primary">stop primary</button>
 <button id="partition-primary" data-verb="partition" data-member="primary">partition primary</button>
 <span id="action-result"></span>
</div>
<h2>Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>address</th><th>role</th><th>offset</th>
<th>lag</th><th>keys</th><th>replicates</th><th></th><th>faults</th></tr></thead>
<tbody></tbody></table>
<h2>Sentinels</h2>
<table id="sentinels"><thead><tr><th>sentinel</th><th>address</th><th>names as primary</th>
<th>flags</th><th>epoch</th><th>replicas</th><th>sentinels</th><th></th><th>faults</th></tr></thead>
<tbody></tbody></table>
<div id="probe"></div>
<h2>Events</h2>
<ol id="events"></ol>
<script>
"use strict";
const VERBS = ["kill", "stop", "cont", "restart", "partition", "heal"];
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function buttons(name) {
  const td = el("td", {class: "faults"});
  for (const v of VERBS) {
    const b = el("button", {"data-verb": v, "data-member": name, id: v + "-" + name}, v);
    td.appendChild(b);
  }
  return td;
}
function row(id, cells, name) {
  // built once, then only the text and classes change (buttons stay clickable)
  let tr = document.getElementById(id);
  if (!tr) {
    tr = el("tr", {id: id});
    for (const _ of cells) tr.appendChild(el("td"));
    tr.appendChild(buttons(name));
  }
  cells.forEach(([cls, text], i) => {
    const td = tr.children[i];
    if (td.className !== cls) td.className = cls;
    const t = text === undefined || text === null ? "" : String(text);
    if (td.textContent !== t) td.textContent = t;
  });
  return tr;
}
function render(state) {
  const nb = document.querySelector("#nodes tbody");
  for (const n of state.nodes) {
    const role = n.reachable ? n.role : "down";
    const tr = row("node-" + n.name, [
      ["name", n.name], ["address", n.address], ["role " + role, role === "slave" ? "replica" : role],
      ["offset", n.reachable ? n.offset : ""], ["lag", n.lag === null ? "" : n.lag],
      ["keys", n.keys === null ? "" : n.keys],
      ["replicates", n.role === "slave" ? (n.master || "?") + " (link " + n.link + ")" :
                     (n.reachable ? n.replicas + " replica(s)" : n.error)],
      ["cut", n.partitioned ? "partitioned" : ""]], n.name);
    tr.dataset.role = role;
    if (tr.parentNode !== nb) nb.appendChild(tr);
  }
  const sb = document.querySelector("#sentinels tbody");
  for (const s of state.sentinels) {
    const tr = row("sentinel-" + s.name, [
      ["name", s.name], ["address", s.address],
      ["primary", s.reachable ? (s.primary || "?") : "unreachable"], ["flags", s.flags],
      ["epoch", s.epoch], ["replicas", s.replicas], ["sentinels", s.sentinels],
      ["cut", s.partitioned ? "partitioned" : ""]], s.name);
    if (tr.parentNode !== sb) sb.appendChild(tr);
  }
  const masters = state.nodes.filter(n => n.reachable && n.role === "master").map(n => n.name);
  document.getElementById("status").textContent = "updated " +
    new Date(state.at * 1000).toLocaleTimeString() + " - primary: " +
    (masters.join(", ") || "none") + (masters.length > 1 ? " (more than one node says master!)" : "");
  document.body.dataset.primary = masters.length === 1 ? masters[0] : "";
  const p = state.probe;
  document.getElementById("probe").textContent = p.writes ?
    "probe writes: " + p.ok + " of " + p.writes + " accepted; last on " + p.last_ok_member +
    (p.last_error ? "; last error: " + p.last_error : "") : "";
}
function addEvent(ev) {
  const li = el("li", {}, ev.time + "  " + ev.source.padEnd(10) + " " + ev.kind.padEnd(16) + " " + ev.text);
  if (ev.source === "fault") li.className = "fault";
  if (ev.kind === "+switch-master") li.className = "sw";
  const list = document.getElementById("events");
  list.insertBefore(li, list.firstChild);
  while (list.childNodes.length > 500) list.removeChild(list.lastChild);
}
document.addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-verb]");
  if (!b) return;
  const out = document.getElementById("action-result");
  out.textContent = b.dataset.verb + " " + b.dataset.member + "...";
  try {
    const r = await fetch("/api/fault", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({verb: b.dataset.verb, member: b.dataset.member})});
    const j = await r.json();
    out.textContent = j.ok ? j.event : "failed: " + j.error;
  } catch (err) { out.textContent = "failed: " + err; }
});
const es = new EventSource("/api/events");
es.addEventListener("state", (m) => render(JSON.parse(m.data)));
es.addEventListener("timeline", (m) => addEvent(JSON.parse(m.data)));
es.onerror = () => { document.getElementById("status").textContent = "disconnected, retrying..."; };
</script>
</body></html>
"""
