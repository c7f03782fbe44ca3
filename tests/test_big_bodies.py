"""A huge request body, over real HTTP: it is parsed and measured without stalling other clients."""

from __future__ import annotations

import threading
import time

import httpx
import orjson

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.processes import ServerProcess

KEY = "enterpriseuser1_key"


def test_a_body_of_300000_messages_does_not_stall_other_clients(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """While the gateway decodes, validates and measures a 9 MB chat body of 300,000 messages (the
    backend reports no usage, so its prompt is estimated), a client listing models back to back is never
    held for the whole of it: its slowest answer takes under half the big request's time. The big
    request is answered, with its prompt estimated from all 300,000 messages."""
    config = demo_dict(fake_backend.url, limits=False)
    config["models"].append({"name": "nousage", "backends": [f"{fake_backend.url}/nousage"]})
    gateway = gateway_factory(config)
    messages = [{"role": "user", "content": "abcd"}] * 300_000
    body = orjson.dumps({"model": "nousage", "messages": messages})
    outcome: dict[str, object] = {}

    def big() -> None:
        started = time.monotonic()
        outcome["response"] = httpx.post(
            gateway.url + "/v1/chat/completions",
            content=body,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            timeout=60,
        )
        outcome["seconds"] = time.monotonic() - started

    worst = 0.0
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        assert client.get("/v1/models").status_code == 200  # the connection is open before it starts
        sender = threading.Thread(target=big)
        sender.start()
        while sender.is_alive():
            started = time.monotonic()
            assert client.get("/v1/models", timeout=60).status_code == 200
            worst = max(worst, time.monotonic() - started)
        sender.join()
    response = outcome["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200, response.text
    assert isinstance(outcome["seconds"], float)
    assert worst < outcome["seconds"] / 2, (worst, outcome["seconds"])
    # 300,000 contents of 4 characters joined by newlines: 1,499,999 characters, 375,000 tokens.
    time.sleep(0.3)  # the access log is written in batches
    logged = [orjson.loads(line) for line in gateway.log().splitlines() if '"model":"nousage"' in line]
    assert [(line["prompt_tokens"], line["usage_estimated"]) for line in logged] == [(375_000, True)]
