"""HTTP errors, retries, chat replacement, OAuth2, and keeping the API key out of everything."""

from __future__ import annotations

import json
import logging

import pytest

from botkit.backends import BackendError
from botkit.events import Done, Failed, SessionInfo, TextDelta
from botkit_plugins.vectara.backend import UNREACHABLE, VectaraBackend
from botkit_plugins.vectara.config import VectaraConfig
from botkit_plugins.vectara.fake import FakeVectara, Raw, Reply

from .conftest import API_KEY, ask, fixture_text, settings

LOGGER = "botkit.backends.vectara"


async def test_429_then_success_waits_retry_after_and_retries(fake, make_backend):
    body = json.loads(fixture_text("vectara_error_429.json"))
    fake.script(Reply(429, body, {"Retry-After": "2"}))
    backend = await make_backend()
    events = await ask(backend, "q")
    assert backend.sleeps == [2.0]
    assert [p.path for p in fake.posts()] == ["/v2/chats", "/v2/chats"]
    assert isinstance(events[-1], Done) and any(isinstance(e, TextDelta) for e in events)


async def test_429_http_date_retry_after_and_5xx_backoff_doubling(fake, make_backend):
    fake.script(Reply(503, {"messages": ["unavailable"]}), Reply(502, None),
                Reply(429, {"messages": ["busy"]}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    backend = await make_backend(retry={"backoff": 0.5})
    events = await ask(backend, "q")
    assert isinstance(events[-1], Done)
    assert backend.sleeps == [0.5, 1.0, 0.0]  # doubling steps (as every HTTP backend's); a past date: at once
    assert len(fake.posts()) == 4  # Vectara's default: four attempts


async def test_the_shared_retry_keys_bound_attempts_and_waits(fake, make_backend):
    fake.script(*[Reply(503, {"messages": ["unavailable"]})] * 3)
    backend = await make_backend(retry={"attempts": 2, "backoff": 0.25})
    events = await ask(backend, "q")
    assert backend.sleeps == [0.25] and len(fake.posts()) == 2
    assert events == [Failed(f"{UNREACHABLE}, please try again shortly", True)]


async def test_old_retry_keys_still_work(fake, make_backend):
    fake.script(*[Reply(503, {"messages": ["unavailable"]})] * 3)
    backend = await make_backend(max_retries=1, retry_backoff=0.25)
    events = await ask(backend, "q")
    assert backend.sleeps == [0.25] and len(fake.posts()) == 2
    assert isinstance(events[-1], Failed) and events[-1].retryable


async def test_a_retry_wait_past_the_turn_deadline_is_not_taken(fake, make_backend):
    fake.script(Reply(429, {"messages": ["busy"]}, {"Retry-After": "5"}))
    backend = await make_backend(request_timeout=1)
    events = await ask(backend, "q")
    assert backend.sleeps == [] and len(fake.posts()) == 1
    assert events == [Failed("the knowledge base is busy, please try again shortly", True)]


async def test_retries_are_bounded_and_end_retryable(fake, make_backend, caplog):
    fake.script(*[Reply(429, {"messages": ["busy"]}, {"Retry-After": "1"})] * 5)
    backend = await make_backend(max_retries=2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        events = await ask(backend, "q")
    assert len(fake.posts()) == 3 and backend.sleeps == [1.0, 1.0]
    assert events == [Failed("the knowledge base is busy, please try again shortly", True)]
    assert "HTTP 429" in caplog.text


async def test_retry_after_longer_than_allowed_is_not_waited_for(fake, make_backend):
    fake.script(Reply(429, {"messages": ["busy"]}, {"Retry-After": "600"}))
    backend = await make_backend(max_retry_wait=30)
    events = await ask(backend, "q")
    assert backend.sleeps == [] and len(fake.posts()) == 1
    assert isinstance(events[-1], Failed) and events[-1].retryable


async def test_404_on_a_turn_starts_a_new_chat_transparently(fake, make_backend, caplog):
    backend = await make_backend()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        events = await ask(backend, "follow-up", "cht_deleted_upstream")
    assert [p.path for p in fake.posts()] == ["/v2/chats/cht_deleted_upstream/turns", "/v2/chats"]
    assert fake.posts()[1].json["query"] == "follow-up"
    info = next(e for e in events if isinstance(e, SessionInfo))
    assert info.session_id in fake.chats and info.session_id != "cht_deleted_upstream"
    assert isinstance(events[-1], Done)
    assert "cht_deleted_upstream no longer exists upstream; starting a new chat" in caplog.text


async def test_404_on_a_new_chat_fails(fake, make_backend):
    fake.script(Raw(fixture_text("vectara_error_404.json"), "application/json", 404))
    backend = await make_backend()
    events = await ask(backend, "q")
    assert len(events) == 1 and isinstance(events[0], Failed) and not events[0].retryable
    assert "Chat cht_does_not_exist not found." in events[0].message


async def test_400_shows_field_errors_to_the_operator(fake, make_backend, caplog):
    fake.script(Raw(fixture_text("vectara_error_400.json"), "application/json", 400))
    backend = await make_backend()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        events = await ask(backend, "q")
    assert "body.search.corpora: [] should have at least 1 items." in caplog.text
    assert isinstance(events[-1], Failed) and not events[-1].retryable
    assert "body.search.corpora" in events[-1].message
    assert len(fake.posts()) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_bad_key_or_permission_logs_for_operator_and_tells_user_without_the_key(fake, make_backend, caplog,
                                                                                   status):
    if status == 401:
        fake.api_key = "a-different-key"  # the configured API_KEY is now wrong
    else:
        fake.script(Raw(fixture_text("vectara_error_403.json"), "application/json", 403))
    backend = await make_backend()
    with caplog.at_level(logging.DEBUG):
        events = await ask(backend, "q")
    assert events == [Failed(UNREACHABLE, False)]
    operator = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(operator) == 1
    line = operator[0].getMessage()
    assert f"HTTP {status}" in line and "backends.kb" in line
    assert ("Invalid API key" in line) if status == 401 else ("Unauthorized to perform" in line)
    assert len(fake.posts()) == 1  # a rejected key is not retried
    assert API_KEY not in caplog.text and API_KEY not in repr(events)


async def test_api_key_never_appears_in_repr_str_or_errors(fake, make_backend):
    backend = await make_backend()
    config = backend.config
    for text in (repr(backend), str(backend), repr(config), str(config), repr(backend._auth),
                 str(config.model_dump()), repr(VectaraConfig.model_validate(settings(fake)))):
        assert API_KEY not in text
    assert fake.requests == []
    await ask(backend, "q")
    assert fake.posts()[0].headers["x-api-key"] == API_KEY  # only where it belongs


async def test_unreachable_server_retries_then_fails_readably(make_backend):
    backend = await make_backend(base_url="http://127.0.0.1:9", max_retries=2)
    events = await ask(backend, "q")
    assert events == [Failed(UNREACHABLE, True)]
    assert len(backend.sleeps) == 2


async def test_stream_error_fixture_ends_in_failed(fake, make_backend):
    fake.script(Raw(fixture_text("vectara_stream_error.sse")))
    backend = await make_backend()
    events = await ask(backend, "q")
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "INVALID_ARGUMENT: The filter expression contains an error" in events[0].message


# -- OAuth2 client credentials --------------------------------------------------------------------


@pytest.fixture
async def oauth_fake():
    async with FakeVectara(client_id="app-1", client_secret="oauth-SECRET-xyz") as server:
        yield server


def oauth_backend(fake: FakeVectara, secret: str = "oauth-SECRET-xyz") -> VectaraBackend:
    config = VectaraConfig.model_validate({
        "client_id": "app-1", "client_secret": secret, "token_url": f"{fake.url}/oauth2/token",
        "base_url": fake.url, "corpora": [{"corpus_key": "kb"}]})
    return VectaraBackend("kb", config, None)


async def test_oauth2_token_is_fetched_once_and_sent_as_bearer(oauth_fake, caplog):
    backend = oauth_backend(oauth_fake)
    await backend.start()
    try:
        with caplog.at_level(logging.DEBUG):
            first = await ask(backend, "q1")
            second = await ask(backend, "q2", first[1].session_id)
    finally:
        await backend.close()
    token_requests = [r for r in oauth_fake.requests if r.path == "/oauth2/token"]
    assert len(token_requests) == 1
    assert "grant_type=client_credentials" in token_requests[0].json
    posts = oauth_fake.posts()
    assert all(p.headers["authorization"] == "Bearer tok_1" and "x-api-key" not in p.headers for p in posts)
    assert isinstance(second[-1], Done)
    assert "oauth-SECRET-xyz" not in caplog.text and "oauth-SECRET-xyz" not in repr(backend)


async def test_oauth2_expired_token_is_refreshed_once_on_401(oauth_fake):
    backend = oauth_backend(oauth_fake)
    await backend.start()
    try:
        await ask(backend, "q1")
        oauth_fake.tokens.clear()  # the server forgot the token (expired, rotated)
        events = await ask(backend, "q2")
    finally:
        await backend.close()
    assert isinstance(events[-1], Done)
    assert len([r for r in oauth_fake.requests if r.path == "/oauth2/token"]) == 2


async def test_oauth2_a_401_with_a_fresh_token_is_not_asked_again(oauth_fake):
    oauth_fake.script(*[Reply(401, {"messages": ["Invalid API key or token."]})] * 3)
    backend = oauth_backend(oauth_fake)
    try:
        events = await ask(backend, "q")
    finally:
        await backend.close()
    assert events == [Failed(UNREACHABLE, False)]
    assert len([r for r in oauth_fake.requests if r.path == "/oauth2/token"]) == 2  # one re-auth
    assert len(oauth_fake.posts()) == 2


async def test_oauth2_refused_credentials_fail_with_the_user_notice(oauth_fake, caplog):
    backend = oauth_backend(oauth_fake, secret="wrong-secret-value")
    await backend.start()
    try:
        with caplog.at_level(logging.ERROR, logger=LOGGER):
            events = await ask(backend, "q")
            with pytest.raises(BackendError) as raised:
                await backend.list_sessions()
    finally:
        await backend.close()
    assert events == [Failed(UNREACHABLE, False)]
    assert raised.value.message == UNREACHABLE
    assert "client_secret" in caplog.text and "wrong-secret-value" not in caplog.text
    assert oauth_fake.posts() == []
