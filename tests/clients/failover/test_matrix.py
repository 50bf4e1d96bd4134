"""A reduced client failover matrix, end to end: redis-py and one other
client library, the primary SIGKILLed, hakv only (lab/clients.py does the
rest: fresh topology behind the fault proxies, the writer, the fault, the
MONITOR on the old primary, the read-back from the new one)."""

from __future__ import annotations

import pytest

from hakv.lab import clients

# the second client: the first one this machine can run
OTHERS = ("ioredis", "ruby-redis", "phpredis", "node-redis", "perl-redis")


def _other() -> str | None:
    return next((c for c in OTHERS if clients.available(c) is None), None)


def test_error_texts_fold_addresses_and_numbers():
    a = clients.normalize("Timeout reading from 127.0.0.1:40001 after 250 ms")
    b = clients.normalize("Timeout reading from 127.0.0.1:51234 after 251 ms")
    assert a == b == "Timeout reading from <addr> after N ms"


def test_page_has_a_row_per_round():
    r = clients.Round("hakv", "redis-py", "kill", "tuned", version="1.2.3", fault_at=100.0,
                      promoted_at=101.0,
                      settings={"socket_timeout": 0.25}, first_new_s=1.25, gap_s=1.3,
                      errors=2, error_texts={"ConnectionError: x": 2}, acked_wait=10)
    page = clients.render([r], "hakv clients --clients redis-py")
    assert "| redis-py | kill | hakv | 1.00 s | 1.25 s | 1.30 s | 2 (1) | 0 | 0 / 10 | 0 / 0 |" in page
    assert "| redis-py | 1.2.3 |" in page
    assert "hakv clients --clients redis-py" in page
    assert '"socket_timeout": 0.25' in page


@pytest.mark.slow
@pytest.mark.parametrize("client", ["redis-py", "other"])
def test_kill_matrix_round(client, tmp_path):
    if client == "other":
        client = _other()
        if client is None:
            pytest.skip("no second client library with Sentinel support is installed")
    why = clients.available(client)
    if why:
        pytest.skip(why)
    r = clients.run_round("hakv", client, "kill", "tuned", str(tmp_path / client))
    detail = clients.summary_line(r)
    # the writer ran and its lines were parsed
    assert r.version, detail
    assert r.writes > clients.WARMUP_WRITES and r.acked > clients.WARMUP_WRITES, detail
    assert not r.crashed, detail
    # the MONITOR on the old primary saw the writes it acknowledged before the kill
    assert r.old_ran >= clients.WARMUP_WRITES, detail
    # a replica was promoted and the client wrote to it, through its own Sentinel support
    assert r.promoted_at is not None and r.promoted_at > r.fault_at, detail
    assert r.first_new_s is not None and 0 < r.first_new_s < clients.RECOVERY_WINDOW, detail
    assert r.gap_s is not None and r.gap_s >= r.first_new_s, detail
    # a killed primary runs nothing after the promotion
    assert r.demoted_writes == 0, detail
    # every write WAIT confirmed on a replica survived the failover
    assert r.acked_wait > clients.WARMUP_WRITES, detail
    assert r.lost_wait == 0, detail
    assert all(text.strip() for text in r.error_texts), detail
    assert sum(r.error_texts.values()) == r.errors, detail
