"""A huge request body, over real HTTP: it is parsed and measured without stalling other clients."""

from __future__ import annotations

import threading
import time

import httpx
import orjson

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.polling import log_through
from tests.support.processes import ServerProcess

KEY = "enterpriseuser1_key"


def test_a_body_of_300000_messages_does_not_stall_other_clients(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """While the gateway decodes, validates and measures a 9 MB chat body of 300,000 messages (the
    backend reports no usage, so its prompt is estimated), a client listing models back to back is never
    held for the whole of it: its slowest answer takes under a quarter of the big request's time (bodies
    this large are decoded in a worker process; measured: about 35 ms against 1 s, 440 ms before). The big
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
    assert worst < outcome["seconds"] / 4, (worst, outcome["seconds"])
    # 300,000 contents of 4 characters joined by newlines: 1,499,999 characters, 375,000 tokens.
    log = log_through(gateway, response)
    logged = [orjson.loads(line) for line in log.splitlines() if '"model":"nousage"' in line]
    assert [(line["prompt_tokens"], line["usage_estimated"]) for line in logged] == [(375_000, True)]


def test_a_huge_body_that_must_change_reaches_the_backend_changed(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """A 9 MB body decoded in the worker process still gets every change on its way to the backend: the
    served model name, `max_tokens` set by a reserving tier, usage asked for on a stream; and a body
    that is not JSON is a 400 naming the problem, not a 500."""
    config = demo_dict(fake_backend.url)
    config["models"].append(
        {"name": "renamed", "served_name": "backend-name", "backends": [f"{fake_backend.url}/record"]}
    )
    config["tiers"]["enterprise"]["reserve"] = True
    config["tiers"]["enterprise"]["limits"] = [{"limit": 10**9, "unit": "tokens", "window": "1h"}]
    gateway = gateway_factory(config)
    messages = [{"role": "user", "content": "abcd"}] * 300_000
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    for stream in (False, True):
        body = orjson.dumps({"model": "renamed", "messages": messages, "stream": stream})
        answer = httpx.post(gateway.url + "/v1/chat/completions", content=body, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        seen = httpx.get(fake_backend.url + "/record/body").json()
        assert (seen["model"], seen["messages"], seen["max_tokens"]) == ("backend-name", 300_000, 1024)
        assert seen["stream_options"] == ({"include_usage": True} if stream else None)
    broken = httpx.post(
        gateway.url + "/v1/chat/completions", content=b"{" * 3_000_000, headers=headers, timeout=60
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_json"
