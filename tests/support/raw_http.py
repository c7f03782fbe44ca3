"""HTTP/1.1 over raw sockets, for tests of the edge: what a misbehaving client sends byte by byte."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["RawResponse", "connect", "read_response", "send_until_answered"]


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server ended the connection after the response

    def error(self) -> dict[str, Any]:
        """The OpenAI-shaped error of the body."""
        error = orjson.loads(self.body)["error"]
        assert set(error) >= {"message", "type", "code"}, error
        assert error["message"].endswith("."), "error messages are whole sentences"
        return dict(error)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_response(sock: socket.socket) -> RawResponse:
    """Read one response (with a Content-Length) and whether the server closed the connection after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"The server closed the connection before a whole response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    timeout = sock.gettimeout()
    sock.settimeout(0.5)  # the edge half-closes right after its answers; an open connection stays silent
    try:
        closed = sock.recv(1) == b""
    except TimeoutError:
        closed = False
    except ConnectionError:
        closed = True
    sock.settimeout(timeout)
    return RawResponse(int(status_line.split()[1]), headers, body[:length], closed)


def send_until_answered(sock: socket.socket, first: bytes, filler: bytes, most: int) -> tuple[int, bool]:
    """Send ``first``, then ``filler`` again and again until the server answers or ``most`` bytes are sent.

    Returns the bytes sent and whether an answer is waiting to be read.
    """
    sock.sendall(first)
    sent = len(first)
    while sent < most:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return sent, True
        try:
            sock.sendall(filler)
        except (BrokenPipeError, ConnectionResetError):
            return sent, False
        sent += len(filler)
    readable, _, _ = select.select([sock], [], [], 5)
    return sent, bool(readable)
