"""``/readyz``: the verdict (pure), the check against fake actors, and the HTTP answer."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import pytest

from actors.messages import CheckReadiness, HostPong, PingHost, ReadinessReply
from actors.readiness import Readiness, verdict
from metrics import endpoint

REGISTRY = ("registry", "address")


def test_everything_answering_is_ready() -> None:
    reply = ReadinessReply(1, ((0, "h0"), (1, "h1")), ())
    pongs = {0: HostPong(2, 0, True), 1: HostPong(3, 1, True)}

    assert verdict(reply, pongs, None) == []


def test_each_part_that_does_not_answer_is_named() -> None:
    reply = ReadinessReply(1, ((0, "h0"), (1, None), (2, "h2"), (3, "h3")), ("scheduler",))
    pongs = {0: HostPong(2, 0, False), 2: None, 3: HostPong(4, 3, True)}

    assert verdict(reply, pongs, "database is locked") == [
        "scheduler: not running", "host 0: not serving", "host 1: not running", "host 2: no answer",
        "database: database is locked"]
    assert verdict(None, {}, None) == ["registry: no answer"]
    assert verdict(ReadinessReply(1, (), ()), {}, None) == ["no station host"]


class FakeNode:
    """Answers the questions of a Readiness like the registry and hosts would, on another thread."""

    def __init__(self, hosts: dict[int, bool | None], registry_answers: bool = True) -> None:
        self.hosts = hosts  # index -> serving (None: the host does not answer)
        self.registry_answers = registry_answers
        self.readiness: Readiness | None = None

    def send(self, address: Any, message: Any) -> None:
        threading.Thread(target=self._answer, args=(address, message)).start()

    def _answer(self, address: Any, message: Any) -> None:
        assert self.readiness is not None
        if isinstance(message, CheckReadiness) and address == REGISTRY and self.registry_answers:
            hosts = tuple((i, f"host-{i}") for i in self.hosts)
            self.readiness.answered(message.token, ReadinessReply(message.token, hosts, ()))
        elif isinstance(message, PingHost) and self.hosts[int(address.split("-")[1])] is not None:
            index = int(address.split("-")[1])
            self.readiness.answered(message.token, HostPong(message.token, index, bool(self.hosts[index])))


def _check(node: FakeNode, probe: Any = lambda: None, timeout: float = 0.3) -> tuple[bool, dict[str, Any]]:
    readiness = Readiness(send=node.send, registry=REGISTRY, probe=probe, timeout=timeout)
    node.readiness = readiness
    try:
        ready, body = asyncio.run(readiness.check())
    finally:
        readiness.close()
    return ready, json.loads(body)


def test_a_node_whose_actors_and_database_answer_is_ready() -> None:
    assert _check(FakeNode({0: True, 1: True})) == (True, {"status": "ready"})


def test_a_host_that_does_not_answer_within_the_deadline_makes_the_node_not_ready() -> None:
    started = time.monotonic()
    ready, body = _check(FakeNode({0: True, 1: None}), timeout=0.3)

    assert (ready, body) == (False, {"status": "not ready", "not_ready": ["host 1: no answer"]})
    assert time.monotonic() - started < 2.0


def test_a_silent_registry_and_a_failing_database_are_both_named() -> None:
    def broken() -> None:
        raise OSError("unable to open database file")

    ready, body = _check(FakeNode({0: True}, registry_answers=False), probe=broken)

    assert not ready
    assert body["not_ready"] == ["registry: no answer", "database: unable to open database file"]


def test_a_database_slower_than_the_deadline_is_not_ready() -> None:
    release = threading.Event()
    ready, body = _check(FakeNode({0: True}), probe=lambda: release.wait(5), timeout=0.2)
    release.set()

    assert not ready and body["not_ready"] == ["database: no answer within 0.2 s"]


@pytest.mark.parametrize("answer, status", [((True, '{"status": "ready"}\n'), 200),
                                            ((False, '{"status": "not ready"}\n'), 503)])
def test_readyz_answers_200_or_503_with_the_check_s_body(answer: tuple[bool, str], status: int) -> None:
    async def ready() -> tuple[bool, str]:
        return answer

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    running = endpoint.MetricsServer(sock, lambda: (b"", "text/plain"), ready)
    running.start()
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as conn:
            conn.sendall(b"GET /readyz HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        assert int(reply.split(b" ", 2)[1]) == status
        assert reply.endswith(answer[1].encode())
        assert b"Content-Type: application/json" in reply
    finally:
        running.stop()
        sock.close()
