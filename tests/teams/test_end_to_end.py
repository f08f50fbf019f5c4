"""Through the real bot (dispatcher, renderer, store) with the `fake` backend."""

from __future__ import annotations

import httpx

from botkit.testing import running_bot


def _config(fake, **backend):
    return {
        "adapters": {"teams": fake.adapter_config()},
        "backends": {"kb": {"type": "fake", **backend}},
    }


async def _post(bot, fake, activity, token="valid"):
    headers = {"Authorization": f"Bearer {fake.sign() if token == 'valid' else token}"} if token else {}
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(f"{bot.server.url}/api/messages", json=activity, headers=headers)
    return response.status_code


def _final(fake):
    return any(c.body.get("type") == "message" and (c.streaminfo or {}).get("streamType") == "final"
               for c in fake.calls)


async def test_personal_chat_streams_natively_end_to_end(fake, tmp_path):
    config = _config(fake, answer="Refunds take five days [1]. Ask support for more.", chunks=3, delay=0.8,
                     sources=[{"title": "Refund guide", "url": "https://kb.example/refunds"}])
    async with running_bot(config, tmp_path) as bot:
        assert await _post(bot, fake, fake.activity("refunds?", mention_bot=True)) == 202
        await bot.idle(15)
        await fake.wait_for(_final)
        assert bot.backends["kb"].calls == [(None, "refunds?")]
    infos = [c.streaminfo for c in fake.calls]
    assert all(infos), "every call in a personal chat is part of the stream"
    kinds = [i["streamType"] for i in infos]
    assert kinds[0] == "informative" and kinds[-1] == "final" and "streaming" in kinds
    sequences = [i["streamSequence"] for i in infos[:-1]]
    assert sequences == sorted(set(sequences)) and sequences[0] == 1
    assert "streamSequence" not in infos[-1]
    texts = [c.body["text"] for c in fake.calls if c.streaminfo["streamType"] == "streaming"]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # full text so far each time
    assert fake.calls[-1].body["text"].startswith("Refunds take five days [1]. Ask support for more.")


async def test_channel_thread_grows_by_put_and_survives_a_429(fake, tmp_path):
    config = _config(fake, answer="Step one. Step two. Step three.", chunks=3, delay=0.6)
    fake.script(429, headers={"Retry-After": "1"}, match=lambda c: c.method == "PUT")
    done = "Step one. Step two. Step three."
    async with running_bot(config, tmp_path) as bot:
        activity = fake.activity("steps?", kind="channel", conversation="19:chan@thread.tacv2;messageid=1699",
                                 mention_bot=True)
        assert await _post(bot, fake, activity) == 202
        await bot.idle(15)
    first = fake.calls[0]
    assert first.method == "POST" and first.conversation == "19:chan@thread.tacv2;messageid=1699"
    assert first.activity_id == activity["id"] and first.streaminfo is None
    puts = fake.calls[1:]
    assert puts and all(c.method == "PUT" and c.activity_id == puts[0].activity_id for c in puts)
    assert puts[0].status == 429 and len(puts) >= 2  # the 429'd edit was retried
    assert puts[-1].body["text"] == done
    assert fake.messages[(first.conversation, puts[0].activity_id)]["text"] == done


async def test_same_activity_twice_is_answered_once(fake, tmp_path):
    async with running_bot(_config(fake, answer="once"), tmp_path) as bot:
        activity = fake.activity("hello", kind="groupChat")
        assert await _post(bot, fake, activity) == 202
        assert await _post(bot, fake, activity) == 202
        await bot.idle(15)
        assert len(bot.backends["kb"].calls) == 1
    assert [c.method for c in fake.calls] == ["POST"]  # a fast answer: no placeholder, one post


async def test_refused_requests_cause_no_outbound_call(fake, tmp_path):
    async with running_bot(_config(fake), tmp_path) as bot:
        assert await _post(bot, fake, fake.activity("hi"), token=None) == 401
        assert await _post(bot, fake, fake.activity("hi"), token=fake.sign(aud="other")) == 401
        assert await _post(bot, fake, fake.activity("hi"), token=fake.sign(serviceurl="https://x.example/")) == 403
        await bot.idle(5)
        assert bot.backends["kb"].calls == []
    assert fake.calls == [] and fake.token_requests == []


async def test_an_answer_teams_refuses_for_good_is_not_tried_again(fake, tmp_path, caplog):
    """A 404 for the conversation (the bot was removed from it): one attempt and one line, not
    six attempts with a traceback each; the turn is recorded as undelivered."""
    config = _config(fake, answer="Nobody will read this.")
    config["dispatch"] = {"progress_delay": 60}  # the answer is the only post
    fake.script(404, {"error": {"code": "ConversationNotFound", "message": "Conversation not found."}}, times=10)
    async with running_bot(config, tmp_path) as bot:
        activity = fake.activity("anyone?", kind="groupChat", mention_bot=True)
        assert await _post(bot, fake, activity) == 202
        await bot.idle(5)
        (turn,) = [t async for t in bot.store.iter_turns()]
    assert len(fake.calls) == 1
    refused = [r for r in caplog.records if r.name == "botkit.render"]
    assert [r.levelname for r in refused] == ["WARNING"] and not refused[0].exc_info
    assert "ConversationNotFound" in refused[0].getMessage() and "not tried again" in refused[0].getMessage()
    assert turn["flags"] == {"undelivered": True}
