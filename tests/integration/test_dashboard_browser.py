"""`hakv dashboard` in a real browser: headless Chromium (Debian's `chromium`)
driven over the Chrome DevTools Protocol on --remote-debugging-pipe (fd 3:
commands in, fd 4: answers out, JSON messages ended by a NUL byte), so no
websocket, selenium or playwright is needed.

The test opens the page on a `hakv up` topology, waits for the page to show
node1 as the primary, clicks "kill primary" with real mouse events and waits
for the page to show another node as primary and node1 down.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time

import pytest

from hakv.lab.faults import LocalBackend
from hakv.lab.topology import Topology
from test_lab_fault import free_run, hakv_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-dev-shm-usage", "--window-size=1280,1000"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]


class CDP:
    """A headless Chromium and one page, over --remote-debugging-pipe."""

    def __init__(self, profile: str, log_path: str):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # a tiny trampoline puts our pipe ends on the fds Chromium expects (3 and 4)
        argv = [CHROMIUM, *FLAGS, "--user-data-dir=" + profile, "--remote-debugging-pipe"]
        # (dup first: one of our ends may itself be fd 3 or 4)
        trampoline = ("import os, sys; a, b = os.dup(%d), os.dup(%d); os.dup2(a, 3); "
                      "os.dup2(b, 4); os.set_inheritable(3, True); os.set_inheritable(4, True); "
                      "os.execv(sys.argv[1], sys.argv[1:])"
                      % (to_chrome_r, from_chrome_w))
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", trampoline, *argv],
                                     pass_fds=(to_chrome_r, from_chrome_w),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # already gone: kill it below
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: bool = False,
             timeout: float = 20.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError("%s: %s" % (method, answer["error"]))
                return answer.get("result", {})

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("document.readyState === 'complete' && location.href === %s"
                      % json.dumps(url), 20, "the page to load")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real click: mouse events at the element's centre."""
        rect = self.evaluate(
            "(() => { const e = document.querySelector(%s); e.scrollIntoView();"
            " const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()" % json.dumps(selector))
        x, y = rect
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1},
                      session=True)

    def wait_for(self, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except RuntimeError as exc:  # e.g. the document is still being replaced
                last = exc
            else:
                if last:
                    return last
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s (last: %r); page text:\n%s" % (
            what, last, self.evaluate("document.body ? document.body.innerText : ''")))


@pytest.fixture
def topology(tmp_path):
    path = str(tmp_path / "topo")
    run = hakv_cli("up", "--once", "--keep", "--dir", path, "--port", str(free_run(3)),
                   "--sentinel-port", str(free_run(3)))
    assert run.returncode == 0, run.stdout + run.stderr
    yield path
    Topology.load(path).stop_all()


@pytest.fixture
def dashboard(topology, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hakv.lab.cli", "dashboard", "--dir", topology,
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    line = proc.stdout.readline()
    try:
        assert "http://127.0.0.1:" in line, line + proc.stdout.read()
        yield line.split("http://", 1)[1].split("/", 1)[0]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture
def browser(tmp_path):
    b = CDP(str(tmp_path / "chromium-profile"), str(tmp_path / "chromium.log"))
    yield b
    b.close()


ROLE_OF = "(document.getElementById('node-%s') || {dataset: {}}).dataset.role"


def test_clicking_kill_primary_shows_another_node_becoming_primary(topology, dashboard, browser):
    browser.open("http://%s/" % dashboard)
    browser.wait_for("document.body.dataset.primary === 'node1' && "
                     "document.querySelectorAll('#sentinels tbody tr').length === 3",
                     20, "the page to show node1 as the primary and 3 sentinels")
    # what the sentinels believe is on the page too
    assert browser.evaluate("document.querySelector('#sentinel-sentinel1 .primary').textContent"
                            ) == "node1"
    # the sentinels must know the replicas before a failover can pick one
    browser.wait_for("[...document.querySelectorAll('#sentinels .replicas')]"
                     ".every(td => td.textContent === '2')", 30, "sentinels to know 2 replicas")

    browser.click("#kill-primary")
    browser.wait_for("document.getElementById('action-result').textContent.includes('kill node1')",
                     10, "the kill to be acknowledged on the page")
    new = browser.wait_for(
        "(() => { const p = document.body.dataset.primary;"
        " return p && p !== 'node1' && (%s) === 'down' ? p : null; })()" % (ROLE_OF % "node1"),
        30, "another node to become primary on the page")
    assert new in ("node2", "node3")
    # every sentinel on the page names the new primary, and the events streamed in
    browser.wait_for("[...document.querySelectorAll('#sentinels .primary')]"
                     ".every(td => td.textContent === %s)" % json.dumps(new), 15,
                     "every sentinel to name %s" % new)
    events = browser.evaluate("document.getElementById('events').innerText")
    assert "kill node1" in events and "+switch-master" in events and "+sdown" in events
    # and the page told the truth: the topology agrees, the click was logged
    status = hakv_cli("status", "--dir", topology)
    row = [line.split() for line in status.stdout.splitlines() if line.startswith(new)][0]
    assert row[2] == "master", status.stdout
    assert [e.member for e in LocalBackend(topology).fault_log()] == ["node1"]
