"""botkit.http.Transport against a loopback fake: credentials from an `Auth` on every attempt, one
re-auth after a 401, retries that stop once something of the answer was passed on."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from botkit.backends import BackendError
from botkit.config import HttpSettings
from botkit.http import Transport, aiter_sse
from botkit.testing import FakeServer, send_stream


class FakeApi(FakeServer):
    """Answers `POST /answer` with two SSE events (to a caller holding a `valid` token, when
    that is set); `cut` drops the connection after that many events, once per value."""

    def __init__(self) -> None:
        self.valid: set[str] | None = None
        self.cut: list[int] = []
        super().__init__()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/answer", self.answer)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.valid is not None and token not in self.valid:
            return web.json_response({"error": "token expired"}, status=401)
        if not self.cut:
            return await send_stream(request, ["data: one\n\n", "data: two\n\n"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(self.cut.pop(0)):
            await response.write(b"data: one\n\n")
        assert request.transport is not None
        request.transport.abort()
        return response


class Tokens:
    """An `Auth` handing out token-1, token-2, ...; `invalidate` moves on to the next."""

    def __init__(self) -> None:
        self.number = 1
        self.asked = 0

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        self.asked += 1
        return {"Authorization": f"Bearer token-{self.number}"}

    def invalidate(self) -> bool:
        self.number += 1
        return True


@pytest.fixture
async def fake():
    async with FakeApi() as server:
        yield server


async def data(response: httpx.Response):
    async for event in aiter_sse(response):
        yield event.data


def transport(fake: FakeApi, auth: Tokens | None = None, **retry) -> Transport:
    return Transport("the fake", "f", fake.url, HttpSettings(retry=retry), auth=auth)


async def answer(client: Transport) -> list[str]:
    return [item async for item in client.items("POST", "answer", data, json={})]


async def test_credentials_are_asked_for_each_attempt_and_renewed_once_after_a_401(fake, delays):
    auth = Tokens()
    client = transport(fake, auth)
    fake.valid = {"token-2"}  # token-1 expired upstream
    try:
        assert await answer(client) == ["one", "two"]
        fake.valid = {"token-9"}  # nothing botkit can get is accepted
        with pytest.raises(BackendError) as refused:
            await answer(client)
    finally:
        await client.close()
    assert [r.headers["Authorization"] for r in fake.requests] == [
        "Bearer token-1", "Bearer token-2", "Bearer token-2", "Bearer token-3"]
    assert auth.asked == 4 and delays == []  # a renewal is no retry: no wait, none of the budget
    assert refused.value.status == 401 and not refused.value.retryable


async def test_a_stream_cut_before_its_first_item_is_retried_and_after_it_is_not(fake, delays):
    client = transport(fake, attempts=3, backoff=0.5)
    try:
        fake.cut = [0]
        assert await answer(client) == ["one", "two"]
        assert len(fake.requests) == 2 and delays == [0.5]
        fake.cut = [1]
        got: list[str] = []
        with pytest.raises(httpx.TransportError):
            async for item in client.items("POST", "answer", data, json={}):
                got.append(item)
    finally:
        await client.close()
    assert got == ["one"] and len(fake.requests) == 3 and delays == [0.5]


async def test_the_backoff_doubles_up_to_max_wait_and_retry_after_beyond_it_gives_up(fake, delays):
    client = transport(fake, attempts=4, backoff=1, max_wait=1.5)
    try:
        fake.fail_next(503, times=3)
        assert await answer(client) == ["one", "two"]
        assert delays == [1, 1.5, 1.5]
        fake.fail_next(429, retry_after="2")
        with pytest.raises(BackendError) as refused:
            await answer(client)
    finally:
        await client.close()
    assert refused.value.status == 429 and refused.value.retryable and delays == [1, 1.5, 1.5]
