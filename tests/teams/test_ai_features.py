"""Teams' native AI-answer features against the loopback connector: informative updates from
the backend's steps, streams that outlive Teams' 2 minutes, the AI label and citation pills on
the final message, and the feedback loop (`feedbackLoopEnabled`, `message/submitAction`)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from botkit.adapters import Outgoing
from botkit.events import Done, Note, Source, Sources, Status, TextDelta
from botkit.testing import running_bot
from botkit_plugins.teams.ai import Native, cite, feedback_vote
from botkit_plugins.feedback.votes import Votes

FEEDBACK = Note("Was this helpful? Reply 👍 or 👎.", kind="feedback")
AI_LABEL = {"type": "https://schema.org/Message", "@type": "Message", "@context": "https://schema.org", "@id": "",
            "additionalType": ["AIGeneratedContent"]}
GUIDE = Source(1, "Installing botkit", "https://docs.example.com/install", "Run pip install botkit[teams].")
FAQ = Source(2, "FAQ", "https://docs.example.com/faq", "Answers to common questions.")


async def _inbound(fake, post, bot, text="question", **kw):
    assert await post(fake.activity(text, **kw)) == 202
    return bot.inbound[-1]


def _message_entity(body: dict) -> dict:
    [entity] = [e for e in body.get("entities") or [] if e["type"] == "https://schema.org/Message"]
    return entity


# -- the final message: AI label and citations --------------------------------------------------


def test_cited_sources_become_claims_and_their_links_bare_markers():
    text, claims = cite("Install it [[1]](https://docs.example.com/install). See [2] and [7].", [GUIDE, FAQ])
    assert text == "Install it [1]. See [2] and [7]."  # [7] names no source: no claim
    assert claims == [
        {"@type": "Claim", "position": 1, "appearance": {"@type": "DigitalDocument", "name": "Installing botkit",
                                                         "abstract": "Run pip install botkit[teams].",
                                                         "url": "https://docs.example.com/install"}},
        {"@type": "Claim", "position": 2, "appearance": {"@type": "DigitalDocument", "name": "FAQ",
                                                         "abstract": "Answers to common questions.",
                                                         "url": "https://docs.example.com/faq"}}]


def test_claims_keep_to_teams_limits():
    many = [Source(n, "T" * 200, "javascript:alert(1)" if n == 1 else None, "word " * 100) for n in range(1, 31)]
    _, claims = cite(" ".join(f"[{n}]" for n in range(1, 31)), many)
    assert len(claims) == 20 and [c["position"] for c in claims] == list(range(1, 21))
    assert all(len(c["appearance"]["abstract"]) <= 160 and len(c["appearance"]["name"]) <= 80 for c in claims)
    assert all("url" not in c["appearance"] for c in claims)  # only http(s) links


def test_only_the_final_answer_is_labelled_cited_and_loses_its_footer():
    native = Native()
    footer = Note("Sources: [1] Installing botkit", kind="sources")
    final = Outgoing("Install it [[1]](https://docs.example.com/install).", [footer, FEEDBACK], final=True,
                     sources=[GUIDE])
    shown, extras = native.split(final)
    assert shown.text == "Install it [1]." and shown.notes == []
    assert extras["channelData"] == {"feedbackLoopEnabled": True}
    assert _message_entity(extras)["additionalType"] == ["AIGeneratedContent"]
    assert [c["position"] for c in _message_entity(extras)["citation"]] == [1]
    growing = Outgoing("Install it [[1]](https://docs.example.com/install)", sources=[GUIDE])
    assert native.split(growing) == (growing, {})
    notice = Outgoing("Send `reset` to start over.", final=True)
    assert native.split(notice, answer=False) == (notice, {})
    # as text: the citations middleware's links and footer stay, the label still comes
    shown, extras = Native(citations=False, feedback=False).split(final)
    assert shown.text == final.text and shown.notes == [footer, FEEDBACK] and extras == {"entities": [AI_LABEL]}
    assert Native(ai_label=False, citations=False, feedback=False).split(final) == (final, {})


async def test_a_streamed_answer_ends_with_the_label_the_citations_and_the_feedback_loop(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    ref = await adapter.show_progress(await _inbound(fake, post, bot))
    link = "[[1]](https://docs.example.com/install)"
    await adapter.edit(ref, Outgoing(f"Install it {link}", sources=[GUIDE]))
    await adapter.edit(ref, Outgoing(f"Install it {link}.", [Note("Sources: ...", kind="sources"), FEEDBACK],
                                     final=True, sources=[GUIDE, FAQ]))
    final = fake.calls[-1]
    assert final.status == 202 and final.streaminfo["streamType"] == "final"
    assert final.body["text"] == "Install it [1]."  # no footer: Teams lists the cited source
    assert "attachments" not in final.body and final.body["channelData"] == {"feedbackLoopEnabled": True}
    entity = _message_entity(final.body)
    assert {k: v for k, v in entity.items() if k != "citation"} == AI_LABEL
    assert [c["position"] for c in entity["citation"]] == [1]  # [2] was not cited
    assert fake.calls[-2].body["text"] == f"Install it {link}"  # chunks stay as the middleware wrote them
    assert all(e["type"] == "streaminfo" for c in fake.calls[:-1] for e in c.body["entities"])


async def test_an_answer_edited_in_a_group_chat_ends_labelled_and_cited(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot, kind="groupChat")
    ref = await adapter.send(inbound.thread, Outgoing("", status="Searching…"), reply_to=inbound)
    await adapter.edit(ref, Outgoing("Install it [1].", [FEEDBACK], final=True, sources=[GUIDE]))
    put = fake.calls[-1]
    assert put.method == "PUT" and put.status == 200
    assert put.body["channelData"] == {"feedbackLoopEnabled": True}
    assert _message_entity(put.body)["citation"][0]["appearance"]["name"] == "Installing botkit"
    assert "entities" not in fake.calls[0].body  # the placeholder is not an answer yet


async def test_notices_are_not_labelled_as_ai(fake, make_adapter):
    adapter, bot, post = await make_adapter(streaming=False)
    inbound = await _inbound(fake, post, bot)
    await adapter.reply(inbound, "Starting over.")
    assert "entities" not in fake.calls[-1].body


async def test_a_message_with_two_root_entities_is_refused_as_teams_does(fake):
    body = {"type": "message", "text": "x", "entities": [AI_LABEL, AI_LABEL]}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{fake.url}/v3/conversations/a%3A1personal/activities", json=body,
                                     headers={"Authorization": "Bearer fake-token-9"})
    assert response.status_code == 400 and "multiple root" in response.json()["error"]["message"]


# -- informative updates and the 2-minute limit ----------------------------------------------------------


async def test_informative_updates_are_kept_under_1000_characters(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    ref = await adapter.show_progress(await _inbound(fake, post, bot))
    await adapter.edit(ref, Outgoing("", status="Reading " + "a long list of documents, " * 60))
    await adapter.edit(ref, Outgoing("Answer", status="Calling a tool"))  # text has come: no more informative
    informative = [c for c in fake.calls if c.streaminfo["streamType"] == "informative"]
    assert len(informative) == 2 and all(c.status in (201, 202) for c in fake.calls)
    assert len(informative[1].body["text"]) <= 1000 and informative[1].body["text"].endswith("…")
    assert fake.calls[-1].streaminfo["streamType"] == "streaming"


async def test_a_stream_nearing_two_minutes_is_finalised_in_place_and_the_answer_goes_on(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    ref = await adapter.show_progress(await _inbound(fake, post, bot))
    await adapter.edit(ref, Outgoing("Part one."))
    ref.data["started"] -= 101  # the stream has run for longer than stream_max_age (100 s)
    await adapter.edit(ref, Outgoing("Part one. Part two."))
    closing = fake.calls[-1]
    assert closing.method == "POST" and closing.streaminfo == {"type": "streaminfo", "streamId": ref.message_id,
                                                               "streamType": "final"}
    assert closing.body["text"] == "Part one. Part two." and len(closing.body["entities"]) == 1  # not labelled yet
    await adapter.edit(ref, Outgoing("Part one. Part two. Part three.", [FEEDBACK], final=True, sources=[GUIDE]))
    last = fake.calls[-1]
    assert last.method == "PUT" and last.activity_id == ref.message_id and last.status == 200
    assert fake.messages[(last.conversation, ref.message_id)]["text"] == "Part one. Part two. Part three."
    assert last.body["channelData"] == {"feedbackLoopEnabled": True} and _message_entity(last.body)


async def test_a_stream_teams_ended_at_two_minutes_is_finalised_in_place_not_restarted(fake, make_adapter):
    adapter, bot, post = await make_adapter()
    inbound = await _inbound(fake, post, bot)
    ref = await adapter.show_progress(inbound)
    await adapter.edit(ref, Outgoing("Part one."))
    fake.stream_limit = -1.0  # Teams' 2 minutes are up: 403 ContentStreamNotAllowed
    await adapter.edit(ref, Outgoing("Part one. Part two."))
    refused, put = fake.calls[-2:]
    assert refused.status == 403 and refused.streaminfo["streamType"] == "streaming"
    assert put.method == "PUT" and put.activity_id == ref.message_id and put.status == 200
    assert put.body["text"] == "Part one. Part two."
    await adapter.edit(ref, Outgoing("Part one. Part two. Done.", final=True))
    assert fake.calls[-1].method == "PUT" and fake.calls[-1].activity_id == ref.message_id
    assert [c for c in fake.calls if c.method == "POST" and c.streaminfo is None] == []  # nothing posted anew
    # streaming worked in this chat: the next answer streams again
    fake.stream_limit = 120.0
    again = await adapter.show_progress(await _inbound(fake, post, bot, "again"))
    assert again.data["mode"] == "stream" and fake.calls[-1].streaminfo["streamType"] == "informative"


def _config(fake, **adapter):
    return {"adapters": {"teams": fake.adapter_config(**adapter)},
            "backends": {"kb": {"type": "fake", "sources": [{"title": "Refund policy",
                                                              "url": "https://kb.example/refunds"}]}},
            "middlewares": {"citations": {}, "feedback": {}}, "dispatch": {"progress_delay": 0}}


async def _post(bot, fake, activity) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.post(f"{bot.server.url}/api/messages", json=activity,
                                 headers={"Authorization": f"Bearer {fake.sign()}"})


async def test_end_to_end_steps_as_informative_updates_then_a_cited_labelled_answer(fake, tmp_path):
    async with running_bot(_config(fake), tmp_path) as bot:
        bot.backends["kb"].steps = steps = asyncio.Queue()
        assert (await _post(bot, fake, fake.activity("refunds?"))).status_code == 202
        await fake.wait_for(lambda f: len(f.calls) == 1)
        await steps.put(Status("Searching the refund policies"))
        await fake.wait_for(lambda f: len(f.calls) == 2)
        await steps.put(Sources([Source(1, "Refund policy", "https://kb.example/refunds",
                                                 "Refunds take five days.")]))
        for event in (TextDelta("Refunds take five days [1]."), Done()):
            await steps.put(event)
        await bot.idle(10)
    kinds = [(c.streaminfo or {}).get("streamType") for c in fake.calls]
    assert kinds[:2] == ["informative", "informative"] and kinds[-1] == "final"
    assert fake.calls[1].body["text"] == "Searching the refund policies"
    final = fake.calls[-1].body
    assert final["text"] == "Refunds take five days [1]."
    assert _message_entity(final)["citation"][0]["appearance"] == {
        "@type": "DigitalDocument", "name": "Refund policy", "abstract": "Refunds take five days.",
        "url": "https://kb.example/refunds"}
    assert final["channelData"] == {"feedbackLoopEnabled": True}


async def test_end_to_end_a_long_answer_outlives_the_stream(fake, tmp_path):
    answer = " ".join(f"Step {n} of the refund." for n in range(1, 7))
    config = _config(fake, stream_max_age=0.5)  # Teams' edits come at least 1.5 s apart
    config["backends"]["kb"].update(answer=answer, chunks=6, delay=0.5)
    async with running_bot(config, tmp_path) as bot:
        assert (await _post(bot, fake, fake.activity("refunds?"))).status_code == 202
        await bot.idle(15)
    stream_id = fake.calls[0].answer["id"]
    closing = [c for c in fake.calls if (c.streaminfo or {}).get("streamType") == "final"]
    assert len(closing) == 1 and closing[0].body["text"] != answer  # closed mid-answer ...
    puts = [c for c in fake.calls if c.method == "PUT"]
    assert puts and all(c.activity_id == stream_id and c.status == 200 for c in puts)  # ... and went on in place
    assert fake.messages[(fake.calls[0].conversation, stream_id)]["text"] == answer
    assert all(c.status in (200, 201, 202) for c in fake.calls)


# -- the feedback loop --------------------------------------------------------------------------------------


def test_a_feedback_invoke_reads_as_a_vote_with_its_text(fake):
    vote = feedback_vote(fake.submit_action("stream-7", "dislike", "It missed the EU policy"))
    assert vote is not None and vote.reactions == ("dislike",) and vote.message_id == "stream-7"
    assert vote.comment == "It missed the EU policy" and vote.user == "aad-29:alice"
    assert feedback_vote(fake.submit_action("stream-7", "like")).comment is None
    odd = fake.submit_action("stream-7", "love")
    assert feedback_vote(odd) is None
    other = fake.submit_action("stream-7")
    other["value"]["actionName"] = "something_else"
    assert feedback_vote(other) is None
    # the Agents Playground sends the text as it is, and names no message
    playground = fake.submit_action("stream-7")
    playground["value"]["actionValue"]["feedback"] = "42"
    del playground["replyToId"]
    vote = feedback_vote(playground)
    assert vote.comment == "42" and vote.message_id == ""


@pytest.mark.parametrize("kind", ["personal", "groupChat"])
async def test_feedback_loop_votes_land_in_the_store_with_their_text(fake, tmp_path, kind):
    config = _config(fake)
    config["backends"]["kb"]["answer"] = "Refunds take five days [1]."
    async with running_bot(config, tmp_path) as bot:
        question = fake.activity("refunds?", kind=kind, mention_bot=kind != "personal")
        assert (await _post(bot, fake, question)).status_code == 202
        await bot.idle(10)
        [answer] = [key[1] for key, body in fake.messages.items()
                    if (body.get("channelData") or {}).get("feedbackLoopEnabled")]
        assert "helpful" not in json.dumps(list(fake.messages.values()), ensure_ascii=False)  # no prompt, no card
        like = await _post(bot, fake, fake.submit_action(answer, "like", kind=kind))
        dislike = await _post(bot, fake, fake.submit_action(answer, "dislike", "Too vague", kind=kind,
                                                            user="29:bob"))
        odd = await _post(bot, fake, fake.submit_action("not-an-answer", "like", kind=kind))
        unnamed = fake.submit_action(answer, "like", "Clear", kind=kind, user="29:carol")
        del unnamed["replyToId"]  # as the Agents Playground sends it: the thread's last answer is meant
        assert (await _post(bot, fake, unnamed)).json() == {"status": 200}
        rows = await Votes(bot.store).list()
        assert len(bot.backends["kb"].calls) == 1  # votes are no questions
    assert like.status_code == dislike.status_code == odd.status_code == 200
    assert like.json() == {"status": 200}
    assert sorted((r["user"], r["value"], r["comment"]) for r in rows) == [
        ("aad-29:alice", "up", None), ("aad-29:bob", "down", "Too vague"), ("aad-29:carol", "up", "Clear")]


async def test_an_unsigned_feedback_invoke_is_refused_and_one_naming_nothing_known_is_dropped(fake, make_adapter):
    _adapter, bot, post = await make_adapter()
    assert await post(fake.submit_action("stream-7", "like"), token=None) == 401
    unnamed = fake.submit_action("stream-7", "like")
    del unnamed["replyToId"]
    assert await post(unnamed) == 200  # no answer asked for feedback here yet
    assert bot.plugins.reactions == []
