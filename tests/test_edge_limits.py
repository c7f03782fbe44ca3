"""The HTTP edge against attackers, over raw sockets to a real gateway: huge and numerous headers, slow
clients, too many connections and bad framing are refused in OpenAI's error shape, others stay served."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory, start_gateway
from tests.support.processes import GatewayProcess, ServerProcess
from tests.support.raw_http import connect, read_response, send_until_answered

TIMEOUT = 1.0  # header and body timeouts of the gateway under test
KEY = "enterpriseuser1_key"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The demo gateway with 1 s header and body timeouts and the default header limits."""
    config = demo_dict(simulator.url, limits=False)
    config["server"].update(header_timeout=f"{TIMEOUT}s", body_timeout=f"{TIMEOUT}s")
    server = start_gateway(config, tmp_path_factory.mktemp("edge"))
    yield server
    server.stop()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("VmRSS is missing from /proc/PID/status.")


def _huge_header(port: int, most: int = 64 * MB) -> tuple[int, int, str]:
    """Try to send a ``most``-byte header; return the bytes sent, the status and the error code."""
    with connect(port) as sock:
        first = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Big: "
        sent, answered = send_until_answered(sock, first, b"a" * 65536, most)
        assert answered, f"no answer after {sent} bytes"
        response = read_response(sock)
        assert response.closed, "the connection ends after a 431"
        return sent, response.status, response.error()["code"]


def test_a_huge_header_is_refused_with_431_before_it_is_read(gateway: GatewayProcess) -> None:
    """A client streaming a 64 MB header gets a 431 (headers_too_large) once it passes 64 KiB, long before
    it has sent 8 MB (the sockets' buffers hold a few MB), and the connection is closed."""
    sent, status, code = _huge_header(gateway.port)
    assert (status, code) == (431, "headers_too_large")
    assert sent < 8 * MB


def test_eight_huge_headers_leave_memory_and_other_clients_alone(gateway: GatewayProcess) -> None:
    """Eight clients sending 64 MB headers at once are each cut off with a 431; meanwhile a normal client is
    served every time, and the gateway's memory grows by less than 50 MB."""
    assert gateway.process is not None
    before = _rss_bytes(gateway.process.pid)
    results: list[tuple[int, int, str]] = []
    attackers = [
        threading.Thread(target=lambda: results.append(_huge_header(gateway.port))) for _ in range(8)
    ]
    for attacker in attackers:
        attacker.start()
    statuses: list[int] = []
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        while any(attacker.is_alive() for attacker in attackers) or len(statuses) < 10:
            statuses.append(client.get("/v1/models", timeout=10).status_code)
    for attacker in attackers:
        attacker.join()
    assert [(status, code) for _, status, code in results] == [(431, "headers_too_large")] * 8
    assert all(sent < 8 * MB for sent, _, _ in results)
    assert set(statuses) == {200}
    assert _rss_bytes(gateway.process.pid) - before < 50 * MB


def test_too_many_header_fields_are_431(gateway: GatewayProcess) -> None:
    """A request with 101 header fields (the limit is 100) is a 431 (too_many_headers); 100 are served."""
    for count, status in ((99, 200), (101, 431)):  # plus Host
        with connect(gateway.port) as sock:
            fields = b"".join(b"x-field-%d: v\r\n" % i for i in range(count))
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n" + fields + b"\r\n")
            response = read_response(sock)
            assert response.status == status, response.body
    assert response.error()["code"] == "too_many_headers"
    assert response.closed


def _trickle_until_answered(sock: socket.socket, byte: bytes) -> bool:
    """Send ``byte`` every 0.2 s until the server answers or hangs up; True if it did so while the bytes
    still came. 50 bytes (10 s, ten times the timeout) is the guard against a server that never does."""
    sock.settimeout(0.2)
    try:
        for _ in range(50):
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    return True
            except TimeoutError:
                sock.sendall(byte)
        return False
    except OSError:
        return True  # the server closed the connection while the bytes still came
    finally:
        sock.settimeout(5)


def test_slow_headers_are_408_however_they_trickle(gateway: GatewayProcess) -> None:
    """200 slowloris connections (a partial head each), one silent connection and one that trickles a
    header byte every 0.2 s all get a 408 (header_timeout) and are closed; the trickler is cut off while
    it still trickles, since the deadline is for the whole head, not each byte. Nothing is timed: a
    connection never cut off fails on the client's socket timeout."""
    slow = [connect(gateway.port) for _ in range(200)]
    silent = connect(gateway.port)
    trickler = connect(gateway.port)
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
        trickler.sendall(b"GET /health HTTP/1.1\r\n")
        assert _trickle_until_answered(trickler, b"x"), "each trickled byte put the header deadline off"
        for sock in [*slow, silent, trickler]:
            response = read_response(sock)
            assert (response.status, response.error()["code"]) == (408, "header_timeout")
            assert response.closed
    finally:
        for sock in [*slow, silent, trickler]:
            sock.close()


def test_a_slow_body_is_408_however_it_trickles(gateway: GatewayProcess) -> None:
    """A body that trickles in a byte every 0.2 s gets a 408 (body_timeout) while it still trickles, and
    the connection is closed: the deadline is for the whole body, not each byte."""
    with connect(gateway.port) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            + f"Authorization: Bearer {KEY}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        assert _trickle_until_answered(sock, b" "), "each trickled byte put the body deadline off"
        response = read_response(sock)
        assert (response.status, response.error()["code"]) == (408, "body_timeout")
        assert response.closed


def test_bad_framing_is_400_in_the_openai_shape(gateway: GatewayProcess) -> None:
    """What is not HTTP/1.1 (a space in a header name, a bad chunk size) is a 400 (invalid_http) in OpenAI's
    error shape, not uvicorn's plain text, and the connection is closed."""
    requests = [
        b"GET /health HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: Bearer {KEY}\r\n\r\nzz\r\n".encode(),
    ]
    for request in requests:
        with connect(gateway.port) as sock:
            sock.sendall(request)
            response = read_response(sock)
            assert response.status == 400
            assert response.headers["content-type"] == "application/json"
            error = response.error()
            assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_http")
            assert response.closed


def test_connections_past_the_cap_are_503_and_served_again_below_it(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """With max_connections 5 and five connections open, a sixth connection's request is a 503
    (too_many_connections, with Retry-After); once one closes, new connections are served again."""
    config = demo_dict(simulator.url, limits=False)
    config["server"]["max_connections"] = 5
    capped = gateway_factory(config)
    held = [connect(capped.port) for _ in range(5)]
    try:
        for sock in held:  # each connection is open on the server once it has answered a request
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
            response = read_response(sock)
            assert (response.status, response.closed) == (200, False)
        with connect(capped.port) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
            response = read_response(sock)
            assert (response.status, response.error()["code"]) == (503, "too_many_connections")
            assert response.headers["retry-after"] == "1"
            assert response.closed
    finally:
        held.pop().close()
    deadline = time.monotonic() + 5
    while httpx.get(capped.url + "/health").status_code != 200:
        assert time.monotonic() < deadline, "a closed connection frees its place"
        time.sleep(0.05)
    for sock in held:
        sock.close()


def test_workers_enforce_the_configured_limits(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """With --workers 2, every worker refuses headers over the configured max_header_bytes (4096) with 431,
    and serves requests under it."""
    config = demo_dict(simulator.url, limits=False)
    config["server"]["max_header_bytes"] = 4096
    workers = gateway_factory(config, "--workers", "2")
    for _ in range(4):  # the kernel spreads connections over both workers
        with connect(workers.port) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
            response = read_response(sock)
            assert response.status == 431
            assert "4096 bytes" in response.error()["message"]
    assert httpx.get(workers.url + "/health", headers={"X-Small": "a" * 3000}).status_code == 200
