"""The local backend's answers: events, citations tied to sources, follow-ups, refresh."""

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from botkit.backends import BackendError, Question, Session
from botkit.events import Done, SessionInfo, Sources, TextDelta, ThreadKey
from botkit_plugins.local import LocalConfig
from botkit_plugins.local.backend import NOTHING_FOUND, LocalBackend, pieces

THREAD = ThreadKey("test", "w", "c", "t1")
MARKER = re.compile(r"\[(\d+)\]")


async def started(tmp_path: Path, **config) -> LocalBackend:
    backend = LocalBackend("kb", LocalConfig(**config), SimpleNamespace(config=SimpleNamespace(base_dir=tmp_path)))
    await backend.start()
    return backend


@pytest.fixture
async def kb(tmp_path: Path):
    backend = await started(tmp_path)
    yield backend
    await backend.close()


async def ask(backend: LocalBackend, text: str, *, history=(), session_id=None) -> list:
    session = Session(THREAD, "kb", session_id, len(history), list(history))
    return [event async for event in backend.stream(session, Question(text, "u1"))]


def answer_of(events: list) -> tuple[str, list]:
    sources = [s for e in events if isinstance(e, Sources) for s in e.sources]
    return "".join(e.text for e in events if isinstance(e, TextDelta)), sources


async def test_slack_question_is_answered_from_the_slack_doc_with_tied_citations(kb: LocalBackend) -> None:
    events = await ask(kb, "How do I add a Slack adapter?")
    assert isinstance(events[0], SessionInfo) and events[0].session_id.startswith("local-")
    assert isinstance(events[1], Sources) and isinstance(events[-1], Done)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3  # streamed, not one blob
    text, sources = answer_of(events)
    assert sources[0].title == "Slack adapter — Adding a Slack adapter"
    assert Path(sources[0].url).name == "slack.md" and Path(sources[0].url).exists()
    assert sources[0].snippet and "bot_token" in text and "signing_secret" in text
    cited = {int(n) for n in MARKER.findall(text)}
    assert cited == {s.index for s in sources} == set(range(1, len(sources) + 1))
    assert all(Path(s.doc_id).name == "slack.md" for s in sources)


async def test_known_session_gets_no_new_session_info(kb: LocalBackend) -> None:
    events = await ask(kb, "What is botkit?", session_id="local-abc")
    assert not any(isinstance(e, SessionInfo) for e in events)
    assert answer_of(events)[1][0].title == "What botkit is"


async def test_nothing_relevant_says_so_without_citations(kb: LocalBackend) -> None:
    for question in ("What is the airspeed velocity of an unladen swallow?", "???", "how do I?"):
        events = await ask(kb, question)
        text, sources = answer_of(events)
        assert text == NOTHING_FOUND and sources == [] and not MARKER.search(text)
        assert isinstance(events[-1], Done)


async def test_follow_up_uses_the_threads_earlier_questions(kb: LocalBackend) -> None:
    alone = answer_of(await ask(kb, "How do I configure it?"))[1]
    assert "discord" not in alone[0].title.lower()
    history = [("Tell me about the Discord adapter", "The Discord adapter runs botkit as a community helper [1].")]
    text, sources = answer_of(await ask(kb, "How do I configure it?", history=history))
    assert sources[0].title.startswith("Discord adapter")
    assert "help_channels" in text
    # a self-contained question is not bent by the history
    assert answer_of(await ask(kb, "How do I add a Slack adapter?", history=history))[1][0].title.startswith("Slack")


async def test_history_turns_zero_ignores_history(tmp_path: Path) -> None:
    backend = await started(tmp_path, history_turns=0)
    history = [("Tell me about the Discord adapter", "...")]
    sources = answer_of(await ask(backend, "How do I configure it?", history=history))[1]
    assert "discord" not in sources[0].title.lower()
    await backend.close()


async def test_base_url_links_max_sources_and_chunks(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    for i in range(5):
        (docs / "guide" / f"tea{i}.md").write_text(f"# Tea {i}\n\n## Brewing tea\n\nBrew tea number {i} for "
                                                   f"{i + 2} minutes. Tea likes hot water.\n", encoding="utf-8")
    backend = await started(tmp_path, paths=["docs"], base_url="https://docs.example.com/", max_sources=2,
                            chunk_chars=10)
    events = await ask(backend, "How long do I brew tea?")
    text, sources = answer_of(events)
    assert len(sources) == 2
    assert re.fullmatch(r"https://docs\.example\.com/guide/tea\d\.md#brewing-tea", sources[0].url)
    assert sources[0].metadata["path"].startswith("guide/")
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= len(text) // 40 and all(not d[:1].isspace() for d in deltas[1:])
    await backend.close()


async def test_changed_files_are_picked_up_while_running(tmp_path: Path) -> None:
    doc = tmp_path / "faq.md"
    doc.write_text("# FAQ\n\nThe office cat is called Miso.\n", encoding="utf-8")
    backend = await started(tmp_path, paths=["faq.md"], refresh_interval=0, index_path="cache/index.sqlite")
    assert (tmp_path / "cache" / "index.sqlite").exists()
    assert "Miso" in answer_of(await ask(backend, "What is the office cat called?"))[0]
    doc.write_text("# FAQ\n\nThe office cat is called Tofu since spring.\n", encoding="utf-8")
    os.utime(doc, ns=(doc.stat().st_atime_ns, doc.stat().st_mtime_ns + 1_000_000_000))
    text = answer_of(await ask(backend, "What is the office cat called?"))[0]
    assert "Tofu" in text and "Miso" not in text
    await backend.close()


async def test_retrieve_gives_whole_passages_for_a_model(kb: LocalBackend) -> None:
    sources = await kb.retrieve("Slack Socket Mode app_token", 2)
    assert [s.index for s in sources] == [1, 2]
    assert sources[0].title.startswith("Slack adapter") and "app_token" in sources[0].snippet
    assert await kb.retrieve("unladen swallow", 3) == []


async def test_missing_path_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="paths not found"):
        await started(tmp_path, paths=["nowhere"])


def test_pieces_cut_after_whitespace() -> None:
    text = "alpha beta gamma delta [1]. epsilon\n\nzeta"
    out = pieces(text, 8)
    assert "".join(out) == text and len(out) > 3
    assert all(p.endswith((" ", "\n")) for p in out[:-1])


async def test_the_passage_that_says_it_outranks_one_sharing_only_the_file_title(tmp_path: Path) -> None:
    (tmp_path / "refunds.md").write_text(
        "# Refunds\n\nRefunds are processed within 14 days of the return arriving at our warehouse.\n\n"
        "## Shipping\n\nStandard delivery takes 3-5 business days within the country.\n")
    backend = await started(tmp_path, paths=[tmp_path])
    text, sources = answer_of(await ask(backend, "How long do refunds take?"))
    assert "14 days" in text and "3-5 business days" not in text
    assert [s.title for s in sources] == ["Refunds"]
    text, sources = answer_of(await ask(backend, "How long does shipping take?"))
    assert "3-5 business days" in text and sources[0].title == "Refunds — Shipping"
    await backend.close()


async def test_a_follow_up_that_adds_little_answers_it_instead_of_repeating(tmp_path: Path) -> None:
    (tmp_path / "vectara.md").write_text(
        "# Vectara backend\n\nThe Vectara backend answers with citations from your corpora. "
        "Give it an API key with `api_key` to sign in.\n\n"
        "It can also sign in with OAuth2 when you set `client_id` and `client_secret`.\n")
    backend = await started(tmp_path, paths=[tmp_path])
    first, _ = answer_of(await ask(backend, "How do I give Vectara an API key?"))
    assert "api_key" in first and "client_secret" not in first
    follow_up, sources = answer_of(await ask(backend, "and what about OAuth2 for it?",
                                             history=[("How do I give Vectara an API key?", first)]))
    assert "client_secret" in follow_up and follow_up != first and sources
    for sentence in re.split(r"(?<=\.)\s+", first):
        assert sentence.split(" [")[0] not in follow_up  # nothing said before is said again
    again, sources = answer_of(await ask(backend, "and what about OAuth2 for it?", history=[
        ("How do I give Vectara an API key?", first), ("and what about OAuth2 for it?", follow_up)]))
    assert again.startswith("The knowledge base says nothing more about that") and not sources
    await backend.close()


def _readme_sections() -> list[str]:
    """The README's sections: its `##` headings and the bold leads of the Operations paragraphs."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, re.M)
    leads = re.findall(r"^\*\*([A-Z][^*]+?)\.\*\*", readme, re.M)
    return headings + leads


@pytest.mark.parametrize("section", _readme_sections())
async def test_the_bundled_knowledge_covers_every_readme_section(kb: LocalBackend, section: str) -> None:
    words = {w for w in re.findall(r"[a-z]+", section.lower()) if len(w) > 3} - {"what", "minutes", "does"}
    text, sources = answer_of(await ask(kb, f"Tell me about {section} in botkit"))
    assert sources, f"nothing in the bundled knowledge answers {section!r}"
    found = " ".join(f"{s.title} {s.snippet}" for s in sources).lower()
    assert not words or any(w[:5] in found for w in words), (section, [s.title for s in sources])


@pytest.mark.parametrize("platform, title", [("Slack", "Slack adapter — Adding a Slack adapter"),
                                             ("Discord", "Discord adapter — Adding a Discord adapter"),
                                             ("Microsoft Teams", "Microsoft Teams adapter — Adding a Teams adapter")])
async def test_how_to_connect_botkit_to_a_platform_is_answered_by_its_set_up(kb: LocalBackend, platform: str,
                                                                            title: str) -> None:
    """A newcomer's first question to the docs bot: not what botkit is ("connects ... Slack"), but how."""
    _, sources = answer_of(await ask(kb, f"How do I connect botkit to {platform}?"))
    assert sources and sources[0].title == title, [s.title for s in sources]


@pytest.mark.parametrize("question, command", [("How do I create a config file?", "botkit init"),
                                               ("How do I check that my tokens work?", "--online")])
async def test_a_newcomers_question_about_a_command_quotes_it(kb: LocalBackend, question: str, command: str) -> None:
    text, sources = answer_of(await ask(kb, question))
    assert sources and sources[0].title == "Operations — Command line", [s.title for s in sources]
    assert command in text
