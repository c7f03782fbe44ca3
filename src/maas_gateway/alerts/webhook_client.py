"""The real ``Post``: httpx, no redirects followed (a redirect could carry the signed alert elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

__all__ = ["WebhookClient"]


class WebhookClient:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False)

    # The timeout is the webhook's own setting, handed to httpx, which bounds each phase with it.
    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:  # noqa: ASYNC109
        response = await self._client.post(url, content=body, headers=dict(headers), timeout=timeout)
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
