"""Activities of the wrong shape (issue 13): refused with 400 after the token, never a 500
or a traceback. Local mode (no token) so that anything can be posted; the shape check is
the same with Bot Framework authentication on.

A valid activity has one of its fields replaced by a value of another JSON type: every
field the adapter reads is tried with every kind of value, by hypothesis.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from botkit.bot import Bot
from botkit.testing import running_bot
from botkit_plugins.teams.testing import FakeBotFramework

#: the fields the adapter reads, as paths into an activity
FIELDS = [("id",), ("type",), ("text",), ("entities",), ("entities", 0), ("from",), ("from", "id"), ("from", "name"),
          ("recipient",), ("recipient", "id"), ("conversation",), ("conversation", "id"),
          ("conversation", "conversationType"), ("conversation", "tenantId"), ("channelData",), ("value",),
          ("replyToId",), ("reactionsAdded",), ("serviceUrl",), ("channelId",)]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=6)


def replaced(activity: dict, path: tuple, value: object) -> dict:
    out = copy.deepcopy(activity)
    parent = out
    for key in path[:-1]:
        parent = parent[key] if isinstance(parent, dict) else parent[key]
    if isinstance(parent, list) and not parent:
        parent.append(value)
    else:
        parent[path[-1]] = value
    return out


@pytest.fixture
def teams_bot(loop_thread, tmp_path) -> Iterator[tuple[Bot, dict]]:
    """A local-mode Teams bot on a loop of its own thread, and a valid activity."""
    stack = contextlib.AsyncExitStack()

    async def start() -> tuple[Bot, dict]:
        fake = await FakeBotFramework(local=True).start()
        stack.push_async_callback(fake.close)
        config = {"server": {"host": "127.0.0.1", "port": 0}, "adapters": {"teams": {"type": "teams"}},
                  "backends": {"b": {"type": "fake"}}}
        bot = await stack.enter_async_context(running_bot(config, tmp_path))
        return bot, fake.activity("hello", kind="groupChat", mention_bot=True)

    try:
        yield loop_thread.run(start())
    finally:
        loop_thread.run(stack.aclose())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(FIELDS), value=JSON)
@example(path=("conversation", "id"), value="")
@example(path=("conversation", "id"), value="..")
@example(path=("conversation", "id"), value="a/b")
@example(path=("conversation", "id"), value="a?b#c")
def test_an_activity_with_a_field_of_another_type_is_never_a_5xx(teams_bot, loop_thread, caplog, path, value):
    bot, activity = teams_bot
    caplog.set_level(logging.WARNING)
    body = replaced(activity, path, value)

    async def post() -> int:
        async with httpx.AsyncClient() as client:
            status = (await client.post(bot.server.url + "/api/messages", json=body)).status_code
        await bot.idle(8)  # what the activity started is logged within this example
        return status

    status = loop_thread.run(post(), 10)
    assert status in (200, 202, 400, 403), (path, value, status)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], (path, value)
