"""Fixtures for the compose tests: the image is built once per session, each test
gets its own project (unique -p name, ephemeral host ports) that is removed with
`down -v` afterwards. Without a Docker engine every test here is skipped."""
from __future__ import annotations

import subprocess
import time

import pytest

from compose_support import (TIMINGS, Project, compose, leftovers, new_project_name, record,
                             unavailable_reason)


def pytest_collection_modifyitems(config, items):
    reason = None
    for item in items:
        if "compose" not in item.keywords:
            continue
        if reason is None:
            reason = unavailable_reason() or ""
        if reason:
            item.add_marker(pytest.mark.skip(reason="compose tests: " + reason))


def pytest_terminal_summary(terminalreporter):
    if not TIMINGS:
        return
    terminalreporter.section("compose timings (seconds)")
    for what, values in TIMINGS.items():
        terminalreporter.write_line("%-45s %s" % (what, ", ".join("%.2f" % v for v in values)))


@pytest.fixture(scope="session")
def compose_image():
    """Builds the image once (only node1 has `build:`; the others reuse it), and
    prunes the dangling images a rebuild leaves behind at the end."""
    import docker

    started = time.monotonic()
    compose("hakvbuild", "build", "node1", timeout=900)
    record("docker compose build", time.monotonic() - started)
    client = docker.from_env()
    yield client
    subprocess.run(["docker", "image", "prune", "-f"], capture_output=True)
    client.close()


@pytest.fixture
def project(compose_image):
    """A started demo topology: `up --wait` returned, so the replicas are synced and
    every sentinel knows every replica and sentinel."""
    from hakv.lab.compose_backend import ComposeBackend

    name = new_project_name()
    started = time.monotonic()
    up = compose(name, "up", "--wait", "--wait-timeout", "240", "--no-build", check=False,
                 timeout=300)
    record("up --wait", time.monotonic() - started)
    try:
        assert up.returncode == 0, "up --wait failed:\n%s\n%s" % (up.stdout[-3000:],
                                                                   up.stderr[-3000:])
        backend = ComposeBackend(name, client=compose_image, fault_log_path="/dev/null")
        yield Project(name, backend)
    finally:
        _down(compose_image, name)


def _down(client, name: str) -> None:
    # One-off client containers carry the project label but are not compose's.
    for c in client.containers.list(all=True, filters={"label": "com.docker.compose.project=%s"
                                                               % name}):
        if c.labels.get("com.docker.compose.oneoff") == "True":
            c.remove(force=True, v=True)
    started = time.monotonic()
    # --profile demo: `down` leaves the services of an inactive profile running.
    down = compose(name, "--profile", "demo", "down", "-v", "--remove-orphans", "-t", "10",
                   check=False, timeout=120)
    record("down -v", time.monotonic() - started)
    left = leftovers(client, name)
    if down.returncode != 0 or any(left.values()):
        # Don't leave anything behind even when the test fails.
        for c in left["containers"]:
            subprocess.run(["docker", "rm", "-f", c], capture_output=True)
        for n in left["networks"]:
            subprocess.run(["docker", "network", "rm", n], capture_output=True)
        for v in left["volumes"]:
            subprocess.run(["docker", "volume", "rm", "-f", v], capture_output=True)

