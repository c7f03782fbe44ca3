"""The official `openai` SDK works unchanged against the gateway: base_url and api_key are all it needs."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.processes import ServerProcess

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def client(gateway: ServerProcess) -> Iterator[OpenAI]:
    # Closed here: an SDK client left to the garbage collector warns about its open socket later,
    # in whichever test happens to be running then.
    with OpenAI(base_url=gateway.url + "/v1", api_key="premiumuser1_key", max_retries=0) as sdk:
        yield sdk


def test_chat_completion(client: OpenAI) -> None:
    """`chat.completions.create` returns a typed completion with usage."""
    reply = client.chat.completions.create(model="simulator-model", messages=MESSAGES)
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.total_tokens == 30


def test_streaming_chat_without_usage_requested(client: OpenAI) -> None:
    """A stream the client did not ask usage for never shows the gateway's own usage chunk."""
    stream = client.chat.completions.create(
        model="simulator-model",
        messages=MESSAGES,
        stream=True,
        max_tokens=5,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 5
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)


def test_streaming_chat_with_usage_requested(client: OpenAI) -> None:
    """With `stream_options.include_usage` the final chunk carries usage and no choices."""
    stream = client.chat.completions.create(
        model="simulator-model",
        messages=MESSAGES,
        stream=True,
        max_tokens=4,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_completions(client: OpenAI) -> None:
    """Legacy `completions.create` works, streamed and not."""
    reply = client.completions.create(model="simulator-model", prompt="Once", max_tokens=2)
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 2
    streamed = list(
        client.completions.create(model="simulator-model", prompt="Once", max_tokens=2, stream=True)
    )
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices).strip()


def test_embeddings_in_float_and_the_sdk_default_base64(client: OpenAI) -> None:
    """Embeddings come back identical whether the SDK asks for floats or for its default base64."""
    floats = client.embeddings.create(model="simulator-embed", input="hello", encoding_format="float")
    default = client.embeddings.create(model="simulator-embed", input="hello")
    assert len(floats.data[0].embedding) == 384
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    raw = client.embeddings.create(model="simulator-embed", input="hello", encoding_format="base64")
    # The SDK hands base64 through as the string the server sent, whatever its type hints say.
    encoded: object = raw.data[0].embedding
    assert isinstance(encoded, str)
    decoded = struct.unpack("<384f", base64.b64decode(encoded))
    assert list(decoded) == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_models_list_and_retrieve(client: OpenAI) -> None:
    """`models.list` and `models.retrieve` work."""
    assert {model.id for model in client.models.list()} == {"simulator-model", "simulator-embed"}
    assert client.models.retrieve("simulator-embed").id == "simulator-embed"


def test_sdk_raises_its_own_typed_errors(gateway: ServerProcess, client: OpenAI) -> None:
    """Gateway errors surface as the SDK's typed exceptions with the gateway's message."""
    with (
        OpenAI(base_url=gateway.url + "/v1", api_key="not-a-key", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError, match="not valid"),
    ):
        bad.models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="simulator-model", messages=[])


def test_rate_limit_is_the_sdk_rate_limit_error(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """A 429 from the gateway is `openai.RateLimitError`, with Retry-After."""
    gateway = gateway_factory(demo_dict(simulator.url))
    with OpenAI(base_url=gateway.url + "/v1", api_key="freeuser2_key", max_retries=0) as client:
        for _ in range(5):
            client.chat.completions.create(model="simulator-model", messages=MESSAGES, max_tokens=1)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="simulator-model", messages=MESSAGES)
        assert int(caught.value.response.headers["retry-after"]) >= 1
