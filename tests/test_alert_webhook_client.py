"""The alert webhook client against receivers that misbehave, over real HTTP on loopback: an answer's
status is all a delivery needs, and the webhook's timeout bounds the whole POST."""

from __future__ import annotations

import asyncio
import time

import pytest

from maas_gateway.alerts.webhook_client import WebhookClient
from tests.support.raw_backend import read_request, serving


async def _endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """200 at once, then a body announced as 10 GB that keeps coming, 64 KiB every 10 ms."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
    while True:
        writer.write(b"x" * 65536)
        await writer.drain()
        await asyncio.sleep(0.01)


async def _trickling_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The status line one byte every 0.3 s: each read is quick, the answer never complete."""
    await read_request(reader)
    for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 1000:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.3)


async def _redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://example.invalid/\r\n")
    writer.write(b"Content-Length: 0\r\n\r\n")
    await writer.drain()


def test_a_receiver_that_answers_200_with_an_endless_body_is_delivered_at_once() -> None:
    """The status is read and the body never: a receiver streaming gigabytes neither holds the sender
    (and every alert of its round) nor fills its memory."""

    async def scenario() -> tuple[int, float]:
        client = WebhookClient()
        try:
            async with serving(_endless_body) as url:
                started = time.monotonic()
                async with asyncio.timeout(20):
                    status = await client.post(url + "/hook", b"{}", {}, 5.0)
                return status, time.monotonic() - started
        finally:
            await client.aclose()

    status, took = asyncio.run(scenario())
    assert status == 200
    assert took < 3.0


def test_a_receiver_that_trickles_its_answer_times_out_within_the_webhook_timeout() -> None:
    """A timeout of 1 s bounds the whole POST, not each read: a byte every 0.3 s is a TimeoutError after
    about a second (retried later), not a delivery held for minutes."""

    async def scenario() -> float:
        client = WebhookClient()
        try:
            async with serving(_trickling_head) as url:
                started = time.monotonic()
                async with asyncio.timeout(30):
                    with pytest.raises(TimeoutError):
                        await client.post(url + "/hook", b"{}", {}, 1.0)
                return time.monotonic() - started
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) < 3.0


def test_a_redirect_is_not_followed() -> None:
    """A 307 is the answer itself: the signed alert is not carried to another host (passes at once: the
    client was built so)."""

    async def scenario() -> int:
        client = WebhookClient()
        try:
            async with serving(_redirect) as url:
                return await client.post(url + "/hook", b"{}", {}, 5.0)
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == 307
