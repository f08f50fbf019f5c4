"""botkit's pytest plugin (entry point pytest11): its fixtures, as a plugin author's tests use them."""

from __future__ import annotations

import httpx
import pytest

from botkit.testing import BUILT_IN_FAKES, LoopbackFakes


def test_pytest_loads_it_through_its_entry_point(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("botkit")


async def test_the_recording_adapter_stamps_each_delivery(botkit_recording):
    rec = await botkit_recording(backends={"fake": {"type": "fake", "answer": "one two three", "chunks": 3,
                                                    "delay": 0.05}})
    await rec.inject("hi?")
    await rec.bot.idle(5)
    times = [d.at for d in rec.deliveries]
    assert len(times) >= 2 and times == sorted(times)
    assert rec.calls == [(d.kind, d.message_id, d.message) for d in rec.deliveries]
    assert rec.texts() == ["one two three"]


async def test_the_fake_backend_answers_what_an_adapter_delivers(botkit_fake_backend):
    backend = await botkit_fake_backend(adapters={"rec": {"type": "recording"}}, answer="Hi {question}")
    await backend.bot.adapters["rec"].inject("there")
    await backend.bot.idle(5)
    assert backend.calls == [(None, "there")]
    assert backend.bot.adapters["rec"].texts() == ["Hi there"]


async def test_two_bots_in_one_test_each_have_their_own_folder(botkit_bot, tmp_path):
    first = await botkit_bot({"adapters": {"rec": {"type": "recording"}}, "backends": {"b": {"type": "fake"}}})
    second = await botkit_bot({"adapters": {"rec": {"type": "recording"}}, "backends": {"b": {"type": "fake"}}},
                              directory=tmp_path / "second")
    assert first.config.base_dir == tmp_path and second.config.base_dir == tmp_path / "second"


async def test_loopback_fakes_of_the_built_ins_start_and_answer(botkit_fakes):
    openai = await botkit_fakes.start("openai", answer="Hello from the fake.")
    slack = await botkit_fakes.start("slack")
    assert openai.url.startswith("http://127.0.0.1:") and slack.api_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as client:
        response = await client.post(openai.url + "/v1/chat/completions",
                                     json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and "Hello" in response.text


@pytest.mark.parametrize("name", sorted(BUILT_IN_FAKES))
async def test_every_built_in_fake_starts_on_loopback_and_stops(name):
    fakes = LoopbackFakes()
    fake = await fakes.start(name)
    url = getattr(fake, "api_url", None) or fake.url
    assert url.startswith("http://127.0.0.1:")
    await fakes.close()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(url)


async def test_an_unknown_fake_is_named_with_the_known_ones(botkit_fakes):
    with pytest.raises(KeyError, match="no loopback fake 'myspace'; there are: slack, discord, teams"):
        await botkit_fakes.start("myspace")
