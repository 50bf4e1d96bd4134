"""hakv.common.client against a real redis-server (started and stopped by the
fixtures in tests/conftest.py on a free loopback port)."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

from hakv.common.client import Client, ConnectionLost, PubSubMessage, ReplyError, encode_command
from procs import free_port, wait_ready


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_encode_command():
    assert encode_command(["SET", b"k", 1, 2.5]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$3\r\n2.5\r\n"


def test_execute_replies_and_errors(real_redis):
    async def main():
        c = await Client.connect("127.0.0.1", real_redis.port, timeout=5)
        assert await c.execute("PING") == b"PONG"
        assert await c.execute("SET", "k", "v") == b"OK"
        assert await c.execute("GET", "k") == b"v"
        assert await c.execute("GET", "missing") is None
        assert await c.execute("INCR", "n") == 1
        assert await c.execute("RPUSH", "l", "a", "b") == 2
        assert await c.execute("LRANGE", "l", 0, -1) == [b"a", b"b"]
        with pytest.raises(ReplyError) as info:
            await c.execute("LPUSH", "k", "x")
        assert info.value.code == "WRONGTYPE"
        assert str(info.value).startswith("WRONGTYPE Operation against a key holding the wrong kind of value")
        # send() hands errors back as values
        reply = await c.send("NOSUCHCOMMAND")
        assert isinstance(reply, ReplyError) and reply.code == "ERR"
        assert c.local_address[0] == "127.0.0.1" and c.peer_address[1] == real_redis.port
        c.close()
        await c.wait_closed()
        assert c.closed

    run(main())


def test_pipeline_keeps_order_and_errors_in_place(real_redis):
    async def main():
        c = await Client.connect("127.0.0.1", real_redis.port, timeout=5)
        replies = await c.pipeline([("SET", "a", "1"), ("INCR", "a"), ("HGET", "a", "x"), ("GET", "a")])
        assert replies[:2] == [b"OK", 2]
        assert isinstance(replies[2], ReplyError) and replies[2].code == "WRONGTYPE"
        assert replies[3] == b"2"
        # many commands in flight at once, answered in order
        futures = [c.send("INCR", "counter") for _ in range(500)]
        assert [await f for f in futures] == list(range(1, 501))
        # MULTI/EXEC as one batch, the way a sentinel sends SLAVEOF
        tx = await c.pipeline([("MULTI",), ("SET", "x", "1"), ("INCR", "x"), ("EXEC",)])
        assert tx == [b"OK", b"QUEUED", b"QUEUED", [b"OK", 2]]
        c.close()

    run(main())


def test_resp3_hello_and_types(real_redis):
    async def main():
        c = await Client.connect("127.0.0.1", real_redis.port, protocol=3, client_name="hakv-test", timeout=5)
        await c.execute("HSET", "h", "f", "v")
        assert await c.execute("HGETALL", "h") == {b"f": b"v"}
        assert await c.execute("CLIENT", "GETNAME") == b"hakv-test"
        info = await c.execute("HELLO", 3)
        assert info[b"proto"] == 3
        c.close()

    run(main())


def test_decode_and_select_and_auth(make_redis):
    node = make_redis("--requirepass", "sekret", wait=False)
    node.password = "sekret"
    wait_ready(node.port, node.proc, password="sekret")

    async def main():
        with pytest.raises(ReplyError) as info:
            await Client.connect("127.0.0.1", node.port, password="wrong", timeout=5)
        assert info.value.code == "WRONGPASS"
        lenient = await Client.connect("127.0.0.1", node.port, password="wrong", strict_handshake=False, timeout=5)
        assert (await lenient.send("PING")).code == "NOAUTH"
        lenient.close()
        c = await Client.connect("127.0.0.1", node.port, password="sekret", db=3, decode=True, timeout=5)
        await c.execute("SET", "k", "é")
        assert await c.execute("GET", "k") == "é"
        c3 = await Client.connect("127.0.0.1", node.port, username="default", password="sekret",
                                  protocol=3, db=3, timeout=5)
        assert await c3.execute("GET", "k") == "é".encode()
        c.close()
        c3.close()

    run(main())


def test_pubsub_callback_and_iterator_resp2(real_redis):
    async def main():
        received: list[PubSubMessage] = []
        sub = await Client.connect("127.0.0.1", real_redis.port, timeout=5, on_message=received.append)
        pub = await Client.connect("127.0.0.1", real_redis.port, timeout=5)
        confirmations = await sub.subscribe("__sentinel__:hello", "other")
        assert confirmations == [[b"subscribe", b"__sentinel__:hello", 1], [b"subscribe", b"other", 2]]
        await sub.psubscribe("news.*")
        assert sub.in_pubsub
        stream = sub.messages()
        assert await pub.execute("PUBLISH", "__sentinel__:hello", "127.0.0.1,26379,abc,0,m,127.0.0.1,6379,0") == 1
        await pub.execute("PUBLISH", "news.today", "hi")
        first = await stream.__anext__()
        second = await stream.__anext__()
        assert first == PubSubMessage("message", b"__sentinel__:hello", b"127.0.0.1,26379,abc,0,m,127.0.0.1,6379,0")
        assert second == PubSubMessage("pmessage", b"news.today", b"hi", b"news.*")
        assert received == [first, second]
        assert await sub.execute("PING") == [b"pong", b""]  # RESP2 pub/sub PING
        await sub.unsubscribe()
        await sub.punsubscribe()
        assert not sub.in_pubsub
        assert await sub.execute("PING") == b"PONG"
        sub.close()
        pub.close()
        # the iterator ends when the connection closes
        assert [m async for m in stream] == []

    run(main())


def test_pubsub_mixed_with_commands_resp3(real_redis):
    async def main():
        sub = await Client.connect("127.0.0.1", real_redis.port, protocol=3, timeout=5)
        pub = await Client.connect("127.0.0.1", real_redis.port, timeout=5)
        stream = sub.messages()
        await sub.subscribe("ch")
        assert await sub.execute("SET", "k", "v") == b"OK"  # RESP3: commands still work
        await pub.execute("PUBLISH", "ch", "payload")
        msg = await stream.__anext__()
        assert msg == PubSubMessage("message", b"ch", b"payload")
        assert await sub.execute("GET", "k") == b"v"
        sub.close()
        pub.close()

    run(main())


def test_refused_connection_fails_immediately():
    port = free_port()

    async def main():
        start = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            await Client.connect("127.0.0.1", port, timeout=5)
        assert time.monotonic() - start < 1

    run(main())


def test_connect_timeout():
    # a listening socket that never accepts: the handshake (PING-less AUTH) never answers
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]

        async def main():
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                await Client.connect("127.0.0.1", port, password="x", timeout=0.3)
            assert time.monotonic() - start < 2

        run(main())


def test_command_timeout_keeps_connection_in_sync(real_redis):
    async def main():
        c = await Client.connect("127.0.0.1", real_redis.port, timeout=5)
        with pytest.raises(TimeoutError):
            await c.execute("BLPOP", "nothing", 1, timeout=0.1)
        # the late BLPOP reply (nil after 1 s) must not be taken as the next command's reply
        assert await c.execute("ECHO", "after", timeout=5) == b"after"
        c.close()

    run(main())


def test_server_death_is_noticed_at_once(make_redis):
    node = make_redis()

    async def main():
        closed = asyncio.Event()
        c = await Client.connect("127.0.0.1", node.port, timeout=5, on_close=lambda exc: closed.set())
        pending = c.send("BLPOP", "never", 0)
        node.kill()  # SIGKILL
        start = time.monotonic()
        await asyncio.wait_for(closed.wait(), 2)
        assert time.monotonic() - start < 1
        with pytest.raises(ConnectionLost):
            await pending
        with pytest.raises(ConnectionLost):
            await c.execute("PING")
        assert c.closed

    run(main())


def test_detach_hands_over_the_socket(make_redis):
    node = make_redis("--repl-diskless-sync-delay", "0")

    async def main():
        c = await Client.connect("127.0.0.1", node.port, timeout=5)
        await c.execute("SET", "k", "v")
        await c.pipeline([("REPLCONF", "listening-port", "1"), ("REPLCONF", "capa", "eof", "capa", "psync2")])
        detached = await c.detach("PSYNC", "?", "-1", timeout=5)
        assert detached.reply.startswith(b"FULLRESYNC ")
        # what follows is the RDB payload: the new owner reads it raw
        data = bytearray(detached.leftover)
        got = asyncio.get_running_loop().create_future()

        class Raw(asyncio.Protocol):
            def data_received(self, chunk):
                data.extend(chunk)
                if b"REDIS" in data and not got.done():
                    got.set_result(True)

            def connection_lost(self, exc):
                if not got.done():
                    got.set_result(False)

        detached.transport.set_protocol(Raw())
        detached.transport.resume_reading()
        if b"REDIS" not in data:
            assert await asyncio.wait_for(got, 10)
        assert b"REDIS" in data  # the RDB magic
        detached.transport.close()
        assert c.closed

    run(main())
