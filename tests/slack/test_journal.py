"""The turn journal's demands on the Slack adapter, end to end through bolt and the fake:
arrival order fixed before any network await, acknowledgement only after `bot.submit`,
and finding an answer message whose post was never recorded."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from botkit import hookimpl
from botkit.adapters import Outgoing
from botkit.events import Inbound, ThreadKey
from botkit.testing import eventually, running_bot
from botkit_plugins.slack import adapter as slack_adapter
from botkit_plugins.slack.testing import BOT_ID, BOT_USER, TEAM, FakeSlack, block_actions, event_callback

from .conftest import TS, bot_config, mention, message, post_event, post_interaction

#: how long a response that must not come yet is given to show up anyway
NOT_YET = 0.5
OTHER = "1690000000.000900"  # the ts of a question in another thread


def socket_config(fake: FakeSlack, **kw: Any) -> dict[str, Any]:
    return bot_config(fake, slack={"app_token": "xapp-test-token", "signing_secret": None}, **kw)


async def deliver(bot: Any, fake: FakeSlack, transport: str, payload: dict[str, Any]) -> None:
    """Deliver one event and return once Slack got its acknowledgement (HTTP 200 / envelope ack)."""
    if transport == "http":
        status, _ = await post_event(bot.server.url, payload)
        assert status == 200
    else:
        assert await fake.push(payload, "env-" + payload["event_id"]) == {"envelope_id": "env-" + payload["event_id"]}


class Submits:
    """Wraps `bot.submit`: records what reaches it, and can hold it (a slow journal write)."""

    def __init__(self, bot: Any, *, hold: bool = False, forward: bool = True) -> None:
        self.inbound: list[Inbound] = []
        self.order: list[str] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self._forward = bot.submit if forward else None
        self._changed = asyncio.Condition()
        bot.submit = self

    async def __call__(self, inbound: Inbound) -> bool:
        async with self._changed:
            self.inbound.append(inbound)
            self.order.append(f"submit {inbound.event_id}")
            self._changed.notify_all()
        await self.release.wait()
        accepted = await self._forward(inbound) if self._forward is not None else True
        self.order.append(f"journaled {inbound.event_id}")
        return accepted

    async def wait(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.inbound) >= count), 5)


# -- arrival order ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "socket"])
async def test_slow_name_lookups_do_not_reorder_a_thread(fake, tmp_path, transport):
    fake.users["U3"] = "carol"
    fake.slow("users.info", 0.6, 0.3, 0.0)  # the first asker's name takes longest to look up
    fake.slow("conversations.info", 0.4, 0.0)
    asks = [("U1", "first about <#C1>"), ("U2", "second about <#C2>"), ("U3", "third, no channel")]
    config = (socket_config if transport == "socket" else bot_config)(fake, backend={"answer": "A: {question}"})
    async with running_bot(config, tmp_path) as bot:
        for n, (user, text) in enumerate(asks):
            ts = f"1690000000.00{n + 1}000"
            event = message(f"<@{BOT_USER}> {text}", ts=ts, thread_ts=None if n == 0 else "1690000000.001000",
                            user=user)
            await deliver(bot, fake, transport, event_callback(event, f"Ev{n}"))  # each after the last ack
        await fake.wait_for(lambda f: sum(u["text"].startswith("A: ") for u in f.of("chat.update")) >= 3)
        await bot.idle(5)
    asked = [text for _, text in bot.backends["b"].calls]
    assert [text.split()[0] for text in asked] == ["first", "second", "third,"]
    answers = [m["text"] for m in fake.history["C1"] if m.get("bot_id") == BOT_ID]
    assert answers == [f"A: {text}" for text in asked]  # posted in the order asked, in one thread
    assert {m["thread_ts"] for m in fake.history["C1"] if m.get("bot_id") == BOT_ID} == {"1690000000.001000"}
    assert len(fake.of("auth.test")) == 1  # bolt did not look itself up while handling the first delivery


async def test_a_follow_up_whose_thread_is_read_first_keeps_its_place_and_holds_up_no_other_thread(fake, tmp_path):
    thread = "1690000000.000001"
    fake.add_message("C1", "an old question", ts=thread)
    fake.add_message("C1", "an old answer", ts="1690000000.000002", thread_ts=thread, user=BOT_USER, bot_id=BOT_ID)
    reading = fake.hold("conversations.replies")
    async with running_bot(bot_config(fake, backend={"answer": "A: {question}"}), tmp_path) as bot:
        submits = Submits(bot)
        adapter = bot.adapters["slack"]
        queued = asyncio.Condition()
        run = adapter.order.run

        async def counted_run(key: ThreadKey, step: Any) -> Any:
            async with queued:
                queued.notify_all()
            return await run(key, step)

        adapter.order.run = counted_run
        key = ThreadKey("slack", TEAM, "C1", thread)
        followup = message("and a follow-up?", kind="message", ts="1690000000.000300", thread_ts=thread,
                           channel_type="channel")
        later = message(f"<@{BOT_USER}> and a mention after it", ts="1690000000.000400", thread_ts=thread)
        first = asyncio.ensure_future(post_event(bot.server.url, event_callback(followup, "EvF")))
        await fake.wait_for(lambda f: f.waiting == ["conversations.replies"])
        second = asyncio.ensure_future(post_event(bot.server.url, event_callback(later, "EvM")))
        async with queued:
            await asyncio.wait_for(queued.wait_for(lambda: adapter.order.queued(key) == 2), 5)
        # another thread is not held up by the look-up
        assert (await post_event(bot.server.url, mention("<@UBOT> elsewhere", event_id="EvO", ts=OTHER)))[0] == 200
        assert [i.event_id for i in submits.inbound] == ["EvO"]
        assert not first.done() and not second.done()
        reading.set()
        assert [(await asyncio.wait_for(r, 5))[0] for r in (first, second)] == [200, 200]
        await fake.wait_for(lambda f: sum(u["text"].startswith("A: ") for u in f.of("chat.update")) >= 3)
        await bot.idle(5)
    assert [i.event_id for i in submits.inbound] == ["EvO", "EvF", "EvM"]
    in_thread = [text for _, text in bot.backends["b"].calls if "elsewhere" not in text]
    assert in_thread == ["and a follow-up?", "and a mention after it"]


async def test_a_thread_read_past_slacks_deadline_is_refused_and_the_redelivery_answered(fake, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setattr(slack_adapter, "THREAD_READ_DEADLINE", 0.2)
    thread = "1690000000.000001"
    fake.add_message("C1", "an old question", ts=thread)
    fake.add_message("C1", "an old answer", ts="1690000000.000002", thread_ts=thread, user=BOT_USER, bot_id=BOT_ID)
    reading = fake.hold("conversations.replies")
    followup = event_callback(message("and a follow-up?", kind="message", ts="1690000000.000300", thread_ts=thread,
                                      channel_type="channel"), "EvF")
    async with running_bot(bot_config(fake, backend={"answer": "A: {question}"}), tmp_path) as bot:
        status, _ = await post_event(bot.server.url, followup)
        assert status == 500 and bot.backends["b"].calls == []  # not acked: Slack delivers it again
        reading.set()
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
        assert (await post_event(bot.server.url, followup, headers=retry))[0] == 200
        await fake.wait_for(lambda f: any(u["text"] == "A: and a follow-up?" for u in f.of("chat.update")))
        await bot.idle(5)
    assert bot.backends["b"].calls == [(None, "and a follow-up?")]


# -- acknowledgement ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "socket"])
async def test_slack_is_acknowledged_only_after_submit_returned(fake, tmp_path, transport):
    config = (socket_config if transport == "socket" else bot_config)(fake, backend={"answer": "ok"})
    async with running_bot(config, tmp_path) as bot:
        submits = Submits(bot, hold=True)
        delivery = asyncio.ensure_future(deliver(bot, fake, transport, mention()))
        await submits.wait(1)
        done, _ = await asyncio.wait({delivery}, timeout=NOT_YET)
        assert not done, "Slack was acknowledged before the turn was journaled"
        assert fake.acks == []
        submits.release.set()
        await asyncio.wait_for(delivery, 5)
        await fake.wait_for("chat.update")
        await bot.idle(5)
    assert submits.order == ["submit Ev1", "journaled Ev1"]


async def test_a_failed_journal_write_is_not_acknowledged(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        async def store_down(inbound: Inbound) -> bool:
            raise ConnectionError("the store cannot write")

        bot.submit = store_down
        status, _ = await post_event(bot.server.url, mention())
    assert status == 500  # Slack delivers it again


class SlowObserver:
    """A `botkit_reaction` observer that takes until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[str] = []
        self._changed = asyncio.Condition()

    @hookimpl
    async def botkit_reaction(self, thread: ThreadKey, message_id: str, user: str, reaction: str,
                              comment: str | None) -> None:
        await self.release.wait()
        async with self._changed:
            self.seen.append(reaction)
            self._changed.notify_all()

    async def wait(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.seen) >= count), 5)


async def test_reactions_and_button_clicks_are_acked_before_they_are_handled(fake, tmp_path):
    async with running_bot(bot_config(fake), tmp_path) as bot:
        observer = SlowObserver()
        bot.plugins.add(observer, "slow-observer", "test")
        answer = await bot.adapters["slack"].send(ThreadKey("slack", TEAM, "C1", TS), Outgoing("an answer"))
        reaction = {"type": "reaction_added", "user": "U2", "reaction": "+1", "item_user": BOT_USER,
                    "item": {"type": "message", "channel": "C1", "ts": answer.message_id}, "event_ts": "1.2"}
        click = block_actions("botkit_feedback_up", "up", channel="C1", message_ts=answer.message_id, thread_ts=TS)
        # both are acknowledged while the observer still holds them: the 3 s never wait for plugins
        assert (await asyncio.wait_for(post_event(bot.server.url, event_callback(reaction, "EvR")), 5))[0] == 200
        assert await asyncio.wait_for(post_interaction(bot.server.url, click), 5) == 200
        assert observer.seen == []
        observer.release.set()
        await observer.wait(2)
    assert sorted(observer.seen) == ["+1", "up"]


# -- finding an unrecorded answer ---------------------------------------------------------------


def recovered(adapter: Any, inbound: Inbound) -> Inbound:
    """`inbound` as the core rebuilds it after a crash: its raw from `journal_raw`, through JSON."""
    return dataclasses.replace(inbound, raw=json.loads(json.dumps(adapter.journal_raw(inbound))))


async def test_find_orphan_finds_the_placeholder_posted_after_the_question_in_its_thread(fake, tmp_path):
    thread = "1690000000.000001"
    bot_said = {"user": BOT_USER, "bot_id": BOT_ID}
    fake.add_message("C1", "the first question", ts=thread)
    fake.add_message("C1", "_thinking…_", ts="1690000000.000002", thread_ts=thread, **bot_said)  # before it
    async with running_bot(bot_config(fake), tmp_path) as bot:
        submits = Submits(bot, forward=False)  # journaled, then the process dies: no turn runs
        adapter = bot.adapters["slack"]
        question = message(f"<@{BOT_USER}> a second question", ts="1690000000.000300", thread_ts=thread)
        fake.history["C1"].append({**question, "type": "message"})
        await post_event(bot.server.url, event_callback(question, "EvQ"))
        inbound = recovered(adapter, submits.inbound[0])
        placeholder = Outgoing("", status=adapter.progress_text)
        assert await adapter.find_orphan(inbound, placeholder) is None  # nothing posted for it yet

        fake.add_message("C1", "_thinking…_", thread_ts=thread)  # a person typing the same
        for n in range(210):  # a busy thread: the answer is on the second page
            fake.add_message("C1", f"chatter {n}", thread_ts=thread)
        other_thread = await adapter.send(ThreadKey("slack", TEAM, "C1", OTHER), placeholder)
        posted = await adapter.send(inbound.thread, placeholder, reply_to=inbound)
        await adapter.send(inbound.thread, placeholder, reply_to=inbound)  # a later one
        found = await adapter.find_orphan(inbound, placeholder)
        assert found is not None and found.message_id == posted.message_id != other_thread.message_id
        assert found.data == posted.data
        await adapter.edit(found, Outgoing("The answer after all.", final=True))
    assert fake.of("chat.update")[-1]["ts"] == posted.message_id
    assert next(m for m in fake.history["C1"] if m["ts"] == posted.message_id)["text"] == "The answer after all."
    assert len(fake.of("conversations.replies")) >= 3 and fake.of("conversations.replies")[-1]["cursor"]


async def test_find_orphan_in_a_dm_kept_as_one_conversation(fake, tmp_path):
    config = bot_config(fake, slack={"dm_sessions": "conversation"})
    async with running_bot(config, tmp_path) as bot:
        submits = Submits(bot, forward=False)
        adapter = bot.adapters["slack"]
        placeholder = Outgoing("", status=adapter.progress_text)
        dm = ThreadKey("slack", TEAM, "D1", "dm")
        earlier = await adapter.send(dm, placeholder)  # left by an earlier turn, before the question
        asked = fake.add_message("D1", "hello again")
        question = message(asked["text"], kind="message", channel="D1", channel_type="im", ts=asked["ts"])
        await post_event(bot.server.url, event_callback(question, "EvD"))
        inbound = recovered(adapter, submits.inbound[0])
        assert inbound.thread == dm
        posted = await adapter.send(dm, placeholder, reply_to=inbound)
        found = await adapter.find_orphan(inbound, placeholder)
        unmatched = await adapter.find_orphan(inbound, Outgoing("something else"))
    assert found is not None and found.message_id == posted.message_id != earlier.message_id
    assert unmatched is None
    assert fake.of("conversations.history")[-1]["oldest"] == asked["ts"]


async def test_a_mention_arriving_while_the_bot_stops_is_refused_so_slack_delivers_it_again(fake, tmp_path):
    """Acked and dropped would lose it: during the drain Slack gets a 503, and its retry is
    answered by the bot that comes back (or by another replica)."""
    config = bot_config(fake, backend={"answer": "Answer to {question}"})
    async with running_bot(config, tmp_path, grace=5) as bot:
        gate = bot.backends["b"].gate = asyncio.Event()
        assert (await post_event(bot.server.url, mention(event_id="EvFirst")))[0] == 200
        await fake.wait_for("chat.postMessage")  # the first answer is under way
        stopping = asyncio.ensure_future(bot.stop(5))  # SIGTERM: the drain starts
        await eventually(lambda: not bot.accepting)
        late = mention(f"<@{BOT_USER}> and one more thing?", event_id="EvLate", ts="1690000000.000300")
        status, _ = await post_event(bot.server.url, late)
        assert status == 503
        gate.set()
        await stopping
    async with running_bot(config, tmp_path) as bot:
        status, body = await post_event(bot.server.url, late, headers={"X-Slack-Retry-Num": "1",
                                                                        "X-Slack-Retry-Reason": "http_error"})
        assert status == 200, body
        await bot.idle(5)
        assert [q for _, q in bot.backends["b"].calls] == ["and one more thing?"]
