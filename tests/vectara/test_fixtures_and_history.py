"""Every recorded Vectara fixture through the plugin, and the history/admin interface."""

from __future__ import annotations

import argparse
import json

import pytest

from botkit.backends import BackendError
from botkit.events import Done, Score, SessionInfo, Sources, TextDelta
from botkit_plugins.vectara import cli
from botkit_plugins.vectara.fake import Raw, Reply

from .conftest import API_KEY, FIXTURES, ask, fixture_text

FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("vectara_*"))
RUM_TEXT = ("Robot Utility Models are policies trained on diverse environments and objects that can be deployed "
            "zero-shot in new environments [1]. They reach about a 90% success rate on unseen environments [2].")


def test_all_fixtures_are_covered():
    covered = {"vectara_chat_stream.sse", "vectara_turn_stream.sse", "vectara_stream_error.sse",
               "vectara_chat_response.json", "vectara_error_400.json", "vectara_error_403.json",
               "vectara_error_404.json", "vectara_error_429.json", "vectara_list_chats.json",
               "vectara_list_turns.json"}
    assert set(FIXTURE_FILES) == covered  # the four error bodies are used in test_errors.py


async def test_chat_stream_fixture(fake, make_backend):
    fake.script(Raw(fixture_text("vectara_chat_stream.sse")))
    events = await ask(await make_backend(), "What are Robot Utility Models?")
    assert [type(e).__name__ for e in events] == ["Sources", "SessionInfo"] + ["TextDelta"] * 6 + ["Score", "Done"]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == RUM_TEXT
    assert events[1] == SessionInfo("cht_74b5a5f3-1f51-4427-a317-f62efb493928",
                                    "trn_74b5a5f3-1f51-4427-a317-f62efb493928")
    assert [s.title for s in events[0].sources] == ["Robot Utility Models"] * 2
    assert events[0].sources[1].metadata["part"]["page"] == 4
    assert events[-2] == Score(0.8231)


async def test_turn_stream_fixture_keeps_the_rephrased_query(fake, make_backend):
    backend = await make_backend()
    chat_id = (await ask(backend, "first"))[1].session_id
    fake.script(Raw(fixture_text("vectara_turn_stream.sse")))
    events = await ask(backend, "How do they handle novel environments?", chat_id)
    assert fake.posts()[-1].path == f"/v2/chats/{chat_id}/turns"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == (
        "They handle novel environments without extra data or fine-tuning [1].")
    assert Score(0.7702) in events
    assert events[-1] == Done({"turn_id": "trn_0c1d9e52-7a3b-4c1e-9f0a-2b6f1e7d4c33",
                               "rephrased_query": "How do Robot Utility Models handle novel environments?"})


async def test_chat_response_fixture_in_non_streaming_mode(fake, make_backend):
    fake.script(Reply(200, json.loads(fixture_text("vectara_chat_response.json"))))
    events = await ask(await make_backend(stream=False), "What are Robot Utility Models?")
    assert [type(e).__name__ for e in events] == ["Sources", "SessionInfo", "TextDelta", "Score", "Done"]
    assert events[2].text == RUM_TEXT and events[3] == Score(0.8231)
    assert isinstance(events[0], Sources) and events[0].sources[0].url == "https://example.org/rum.pdf"


async def test_list_chats_fixture_follows_page_key(fake, make_backend):
    body = json.loads(fixture_text("vectara_list_chats.json"))
    fake.respond("GET", "/v2/chats", Reply(200, body))
    backend = await make_backend()
    chats = await backend.list_sessions(limit=2)
    gets = [r for r in fake.requests if r.path == "/v2/chats"]
    assert [g.query for g in gets] == [{"limit": "2"}, {"limit": "1", "page_key": "eyJvZmZzZXQiOjF9"}]
    assert [c["id"] for c in chats] == ["cht_74b5a5f3-1f51-4427-a317-f62efb493928"] * 2
    assert gets[0].headers["x-api-key"] == API_KEY


async def test_list_turns_fixture(fake, make_backend):
    chat = "cht_74b5a5f3-1f51-4427-a317-f62efb493928"
    fake.respond("GET", f"/v2/chats/{chat}/turns", Reply(200, json.loads(fixture_text("vectara_list_turns.json"))))
    turns = await (await make_backend()).list_turns(chat)
    assert [t["query"] for t in turns] == ["What are Robot Utility Models?", "How do they handle novel environments?"]


async def test_history_and_administration_against_the_fake(fake, make_backend):
    backend = await make_backend()
    chat_ids = []
    for question in ("one", "two", "three"):
        chat_ids.append((await ask(backend, question))[1].session_id)
    await ask(backend, "one, again", chat_ids[0])

    listed = await backend.list_sessions(limit=50)
    assert [c["id"] for c in listed] == chat_ids
    few = await backend.list_sessions(limit=2)  # the fake pages by limit: one page here
    assert [c["id"] for c in few] == chat_ids[:2]
    assert (await backend.get_chat(chat_ids[0]))["first_query"] == "one"

    turns = await backend.list_turns(chat_ids[0])
    assert [t["query"] for t in turns] == ["one", "one, again"]
    disabled = await backend.disable_turn(chat_ids[0], turns[0]["id"])
    assert disabled["enabled"] is False
    patch = [r for r in fake.requests if r.method == "PATCH"][0]
    assert patch.json == {"enabled": False} and patch.path == f"/v2/chats/{chat_ids[0]}/turns/{turns[0]['id']}"

    assert await backend.delete_chat(chat_ids[1]) is True
    assert chat_ids[1] not in fake.chats
    assert await backend.delete_chat(chat_ids[1]) is True  # already gone counts as deleted
    with pytest.raises(BackendError) as raised:
        await backend.get_chat(chat_ids[1])
    assert raised.value.status == 404


async def test_paging_follows_page_key_across_pages(fake, make_backend):
    backend = await make_backend()
    for n in range(5):
        await ask(backend, f"q{n}")
    fake.page_size = 2
    chats = await backend.list_sessions(limit=50)
    assert [c["first_query"] for c in chats] == ["q0", "q1", "q2", "q3", "q4"]
    gets = [r for r in fake.requests if r.path == "/v2/chats" and r.method == "GET"]
    assert len(gets) == 3 and "page_key" not in gets[0].query and all("page_key" in g.query for g in gets[1:])
    assert len(await backend.list_sessions(limit=3)) == 3


@pytest.mark.parametrize("delete_on_reset", [False, True])
async def test_delete_session_on_reset_only_if_configured(fake, make_backend, delete_on_reset):
    backend = await make_backend(delete_on_reset=delete_on_reset)
    chat_id = (await ask(backend, "q"))[1].session_id
    await backend.end_session(chat_id)
    assert (chat_id in fake.chats) is not delete_on_reset
    assert await backend.delete_session(chat_id) is True  # an operator's delete always deletes
    assert chat_id not in fake.chats


async def test_admin_cli_lists_shows_and_deletes(fake, make_backend, tmp_path, capsys):
    backend = await make_backend()
    chat_id = (await ask(backend, "hello"))[1].session_id
    config = tmp_path / "botkit.yaml"
    config.write_text(
        "adapters: {console: {}}\n"
        f"backends:\n  kb:\n    type: vectara\n    api_key: {API_KEY}\n    base_url: {fake.url}\n"
        "    corpora: [{corpus_key: docs}]\n", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="botkit")
    cli.add_parser(parser.add_subparsers())

    async def run(*argv: str) -> tuple[int, str]:
        args = parser.parse_args(["vectara", *argv, "-c", str(config)])
        status = await args.func(args)
        return status, capsys.readouterr().out

    status, out = await run("chats")
    assert status == 0 and [c["id"] for c in json.loads(out)] == [chat_id]
    status, out = await run("turns", chat_id)
    assert json.loads(out)[0]["query"] == "hello"
    status, out = await run("disable-turn", chat_id, json.loads(out)[0]["id"])
    assert json.loads(out)["enabled"] is False
    status, out = await run("delete", chat_id)
    assert status == 0 and json.loads(out) == {"deleted": True} and chat_id not in fake.chats
    status, out = await run("chat", chat_id)
    assert status == 1 and API_KEY not in capsys.readouterr().err
