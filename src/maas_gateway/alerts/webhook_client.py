"""The real ``Post``: httpx, no redirects followed (a redirect could carry the signed alert elsewhere).

Only the answer's status matters, so its body is never read: a receiver that answers 200 and then
streams gigabytes neither holds the sender (and with it every alert of its round) nor fills its memory.
The webhook's timeout bounds the whole POST, not each read, so a receiver trickling its answer a byte at
a time is a timeout (retried later) rather than a delivery held for as long as it likes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

__all__ = ["WebhookClient"]


class WebhookClient:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False)

    # The timeout is the webhook's own setting: the whole POST's deadline, and httpx's for each phase.
    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            request = self._client.build_request(
                "POST", url, content=body, headers=dict(headers), timeout=timeout
            )
            response = await self._client.send(request, stream=True)
            await response.aclose()  # the body unread: the connection is dropped, not drained
            return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
