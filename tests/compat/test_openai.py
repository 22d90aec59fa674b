"""OpenAI compatibility, checked with the official `openai` package against
the real binary serving a real model."""

import json
import concurrent.futures
import time

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI

from conftest import API_KEY


def test_models_are_listed(client, tiny_server):
    models = client.models.list()
    assert [model.id for model in models.data] == [tiny_server.model, "all-minilm-l6-v2"]
    assert client.models.retrieve(tiny_server.model).id == tiny_server.model


def test_chat_non_streaming(client, tiny_server):
    completion = client.chat.completions.create(
        model=tiny_server.model,
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}],
        max_tokens=20,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_streamed_deltas_equal_non_streaming_with_same_seed(client, tiny_server):
    params = dict(
        model=tiny_server.model,
        messages=[{"role": "user", "content": "Say something about the sea."}],
        max_tokens=40,
        temperature=0.9,
        seed=1234,
    )
    plain = client.chat.completions.create(**params).choices[0].message.content
    stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params)
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert "".join(pieces) == plain
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0


def test_json_schema_output_validates(client, tiny_server):
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 60},
            "year": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
        },
        "required": ["title", "year", "tags"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=tiny_server.model,
        messages=[{"role": "user", "content": "Describe a famous law as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "law", "schema": schema, "strict": True}},
        max_tokens=200,
        temperature=0.5,
        seed=3,
    )
    # The grammar bounds every string, so the answer ends well before
    # max_tokens and must then parse and validate.
    assert completion.choices[0].finish_reason == "stop"
    content = completion.choices[0].message.content
    jsonschema.validate(json.loads(content), schema)


def test_tool_call_round_trip(client, tiny_server):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_permit",
                "description": "Find a building permit by its number",
                "parameters": {
                    "type": "object",
                    "properties": {"number": {"type": "string"}},
                    "required": ["number"],
                },
            },
        }
    ]
    messages = [{"role": "user", "content": "What is the status of permit PC-2024-118?"}]
    first = client.chat.completions.create(
        model=tiny_server.model, messages=messages, tools=tools, tool_choice="required", max_tokens=60, temperature=0
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "lookup_permit"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["number"], str)
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"status": "approved"})})
    second = client.chat.completions.create(model=tiny_server.model, messages=messages, max_tokens=40, temperature=0)
    assert second.choices[0].message.content.strip()


def test_streamed_tool_call(client, tiny_server):
    tools = [{"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}]
    stream = client.chat.completions.create(
        model=tiny_server.model,
        messages=[{"role": "user", "content": "ping the server"}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "ping"}},
        stream=True,
        max_tokens=100,
        temperature=0,
    )
    names, finish = [], None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                if call.function and call.function.name:
                    names.append(call.function.name)
            finish = choice.finish_reason or finish
    assert names == ["ping"]
    assert finish == "tool_calls"


def test_errors_raise_the_matching_sdk_exceptions(client, tiny_server):
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"
    assert not_found.value.response.headers.get("x-request-id")

    bad_key = OpenAI(base_url=tiny_server.base_url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.models.list()

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=tiny_server.model, messages=[{"role": "user", "content": "hi"}], temperature=5
        )
    assert bad.value.param == "temperature"

    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(
            model=tiny_server.model, messages=[{"role": "user", "content": "lorem ipsum dolor " * 3000}]
        )
    assert too_long.value.code == "context_length_exceeded"

    with pytest.raises(openai.APIStatusError) as too_large:
        client.chat.completions.create(
            model=tiny_server.model, messages=[{"role": "user", "content": "x" * 300_000}]
        )
    assert too_large.value.status_code == 413

    response = httpx.post(
        tiny_server.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        content=b'{"model": "x", "messages": [',
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request_body"
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


def test_queue_full_raises_rate_limit_error(client, tiny_server):
    def long_request(_):
        try:
            client.chat.completions.create(
                model=tiny_server.model,
                messages=[{"role": "user", "content": "Write a long story."}],
                max_tokens=400,
                temperature=1.0,
            )
            return "ok"
        except openai.RateLimitError as error:
            assert error.response.headers.get("retry-after")
            return "limited"

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(long_request, range(10)))
    assert "ok" in outcomes
    assert "limited" in outcomes


def test_default_model_answers(default_server):
    client = OpenAI(base_url=default_server.base_url + "/v1", api_key=API_KEY, max_retries=0)
    completion = client.chat.completions.create(
        model="qwen2.5-1.5b-instruct",
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        max_tokens=10,
        temperature=0,
    )
    assert "paris" in completion.choices[0].message.content.lower()


def test_embeddings_shape_and_normalisation(client):
    import base64
    import math
    import struct

    result = client.embeddings.create(
        model="all-minilm-l6-v2", input=["Building permits", "Permis de construire", "Tax return"]
    )
    assert [item.index for item in result.data] == [0, 1, 2]
    for item in result.data:
        assert len(item.embedding) == 384
        assert abs(math.sqrt(sum(v * v for v in item.embedding)) - 1.0) < 1e-4
    assert result.usage.prompt_tokens > 0

    single = client.embeddings.create(model="all-minilm-l6-v2", input="Building permits", encoding_format="base64")
    raw = single.data[0].embedding
    if isinstance(raw, str):  # older SDKs hand the base64 text back unchanged
        raw = list(struct.unpack("<384f", base64.b64decode(raw)))
    assert all(abs(a - b) < 1e-6 for a, b in zip(raw, result.data[0].embedding))

    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model="all-minilm-l6-v2", input="x", dimensions=12)
    assert bad.value.param == "dimensions"


def test_a_file_goes_into_a_collection_and_grounds_an_answer(client, tiny_server):
    """`files.create` (OpenAI's files API) keeps the file as a document of the
    collection named in extra_body; a grounded chat then cites it."""
    http = httpx.Client(base_url=tiny_server.base_url, headers={"Authorization": f"Bearer {API_KEY}"})
    collection = http.post("/v1/collections", json={"name": "Files API"}).json()["id"]
    note = b"# Parking\n\nStaff parking permits are renewed every March at the front desk.\n"
    uploaded = client.files.create(
        file=("parking.md", note), purpose="assistants", extra_body={"collection": str(collection)}
    )
    assert uploaded.object == "file" and uploaded.filename == "parking.md"
    assert uploaded.bytes == len(note) and uploaded.id.startswith("file-")
    document = uploaded.model_extra["document_id"]
    for _ in range(600):
        status = http.get(f"/v1/documents/{document}").json()["status"]
        if status in ("ready", "failed"):
            break
        time.sleep(0.1)
    assert status == "ready"
    # Without a collection the SDK gets a clear 400 naming the parameter.
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("x.md", b"# x\n\ny\n"), purpose="assistants")
    assert refused.value.param == "collection"
    answer = client.chat.completions.create(
        model=tiny_server.model,
        messages=[{"role": "user", "content": "When are staff parking permits renewed?"}],
        max_tokens=20,
        temperature=0,
        extra_body={"civitas": {"collections": [collection], "method": "lexical"}},
    )
    sources = answer.model_extra["sources"]
    assert sources[0]["document_name"] == "parking.md"
    assert "every March" in sources[0]["content"]
