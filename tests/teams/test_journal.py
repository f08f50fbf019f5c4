"""The turn journal's demands on the Teams adapter: acknowledge only after `bot.submit`
returned, and answer a turn recovered after a restart from its journaled activity."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from botkit.adapters import Outgoing
from botkit.events import Inbound

#: how long a response that must not come yet is given to show up anyway
NOT_YET = 0.5


async def test_the_202_goes_out_only_after_submit_returned(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    entered, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def journaling(inbound: Inbound) -> bool:  # a journal write that takes until released
        order.append("submit")
        entered.set()
        await release.wait()
        order.append("journaled")
        return True

    bot.submit = journaling
    delivery = asyncio.ensure_future(post(fake.activity("is this acknowledged early?")))
    await asyncio.wait_for(entered.wait(), 5)
    done, _ = await asyncio.wait({delivery}, timeout=NOT_YET)
    assert not done, "Teams got its 202 before the turn was journaled"
    release.set()
    assert await asyncio.wait_for(delivery, 5) == 202
    assert order == ["submit", "journaled"]


async def test_a_failed_journal_write_is_not_acknowledged(fake, make_adapter):
    adapter, bot, post = await make_adapter()

    async def store_down(inbound: Inbound) -> bool:
        raise ConnectionError("the store cannot write")

    bot.submit = store_down
    assert await post(fake.activity("lost?")) == 500  # Teams delivers it again


@pytest.mark.parametrize("kind, conversation, streamed", [
    ("personal", None, True),
    ("channel", "19:chan@thread.tacv2;messageid=1699999999999", False),
])
async def test_a_recovered_turn_is_answered_from_its_journaled_activity(fake, make_adapter, kind, conversation,
                                                                        streamed):
    before, bot, post = await make_adapter()
    assert await post(fake.activity("what survives a restart?", kind=kind, conversation=conversation)) == 202
    asked = bot.inbound[-1]
    raw = json.loads(json.dumps(before.journal_raw(asked)))
    assert raw == asked.raw  # the whole activity, as it arrived

    after, _, _ = await make_adapter()  # a new process: it never heard from this conversation
    recovered = dataclasses.replace(asked, raw=raw)
    ref = await after.show_progress(recovered)
    await after.edit(ref, Outgoing("It is answered.", final=True))

    first, last = fake.calls[0], fake.calls[-1]
    assert first.method == "POST" and first.body["replyToId"] == asked.raw["id"]
    assert first.conversation == asked.raw["conversation"]["id"]
    assert (first.streaminfo is not None) is streamed
    assert last.body["text"] == "It is answered."
    assert await after.find_orphan(recovered, Outgoing("", status=after.progress_text)) is None  # Teams cannot look
