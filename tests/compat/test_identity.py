"""Identity errors reach the official SDK as its own exception types."""

import json
import urllib.request

import openai
import pytest

from conftest import API_KEY


def _admin(server, method, path, body=None):
    request = urllib.request.Request(
        server.base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def member(tiny_server):
    """A member of a new agency whose only group may use no model."""
    agency = _admin(tiny_server, "POST", "/api/admin/agencies", {"slug": "sdk-check", "name": "SDK check"})
    base = f"/api/admin/agencies/{agency['id']}"
    group = _admin(tiny_server, "POST", base + "/groups", {"name": "readers"})
    person = _admin(
        tiny_server,
        "POST",
        base + "/people",
        {"email": "reader@sdk.example.gov", "display_name": "Reader", "group_ids": [group["id"]]},
    )
    key = _admin(tiny_server, "POST", base + "/keys", {"person_id": person["id"], "name": "sdk"})
    return {"base": base, "group": group, "person": person, "key": key}


def _client(server, key):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0)


def test_a_model_not_allowed_is_hidden_and_refused(tiny_server, member):
    client = _client(tiny_server, member["key"]["secret"])
    assert [model.id for model in client.models.list()] == []
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model=tiny_server.model, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    assert refused.value.code == "model_not_allowed"


def test_limits_raise_rate_limit_error_and_revoked_keys_authentication_error(tiny_server, member):
    _admin(
        tiny_server,
        "PUT",
        member["base"] + f"/groups/{member['group']['id']}/models",
        {"models": [tiny_server.model]},
    )
    _admin(
        tiny_server,
        "PUT",
        member["base"] + "/limits",
        {"scope": f"person:{member['person']['id']}", "requests_per_minute": 0},
    )
    client = _client(tiny_server, member["key"]["secret"])
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(
            model=tiny_server.model, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    assert limited.value.code == "requests_per_minute_exceeded"
    assert int(limited.value.response.headers["retry-after"]) >= 1
    _admin(tiny_server, "DELETE", member["base"] + f"/keys/{member['key']['key']['id']}")
    with pytest.raises(openai.AuthenticationError) as revoked:
        client.models.list()
    assert revoked.value.code == "api_key_revoked"
