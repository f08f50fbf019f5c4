"""The FTS5 index: built from files, kept in step with them, safe for any question."""

import os
from pathlib import Path

import pytest

from botkit_plugins.local import KNOWLEDGE
from botkit_plugins.local.index import KnowledgeIndex, collect
from botkit_plugins.local.query import build_query, is_follow_up, match_expression, terms


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_knowledge_base_is_indexed() -> None:
    docs = sorted(KNOWLEDGE.glob("*.md"))
    assert 6 <= len(docs) <= 12
    index = KnowledgeIndex(":memory:")
    report = index.sync(collect([KNOWLEDGE]))
    assert report.files == len(docs) and len(report.indexed) == len(docs)
    assert report.passages >= 3 * len(docs)
    hits = index.search(build_query("How do I add a Slack adapter?", []))
    assert Path(hits[0].path).name == "slack.md"
    assert hits[0].matched == {"add", "slack", "adapter"}


def test_stemming_and_column_weights(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "# Apples\n\nApples are configured by growers.\n")
    write(tmp_path / "b.md", "# Pears\n\nSome growers mention apples once.\n\n## Configuring\n\nOnly pears here.\n")
    index = KnowledgeIndex(":memory:")
    index.sync(collect([tmp_path]))
    hits = index.search(build_query("apple configuration", []))
    assert [Path(h.path).name for h in hits][:1] == ["a.md"]
    assert hits[0].matched == {"apple", "configuration"}  # stems: apples, configured


def test_changed_added_and_removed_files_are_reindexed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    first = write(docs / "one.md", "# One\n\nThe kumquat lives here.\n")
    write(docs / "two.txt", "A note about durians.\n")
    write(docs / "ignored.rst", "Rambutan.\n")
    index = KnowledgeIndex(":memory:")
    assert len(index.sync(collect([docs])).indexed) == 2
    assert not index.sync(collect([docs])).changed  # nothing changed: nothing re-read

    first.write_text("# One\n\nThe persimmon moved in.\n", encoding="utf-8")
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 1_000_000_000))
    (docs / "two.txt").unlink()
    write(docs / "sub" / "three.markdown", "# Three\n\nDurians again.\n")
    report = index.sync(collect([docs]))
    assert sorted(Path(p).name for p in report.indexed) == ["one.md", "three.markdown"]
    assert [Path(p).name for p in report.removed] == ["two.txt"]
    assert index.search(build_query("kumquat", [])) == []
    assert [h.rel for h in index.search(build_query("persimmon", []))] == ["one.md"]
    assert [h.rel for h in index.search(build_query("durians", []))] == ["sub/three.markdown"]


def test_index_file_persists_and_is_rebuilt_only_for_changes(tmp_path: Path) -> None:
    doc = write(tmp_path / "docs" / "a.md", "# A\n\nLychee facts.\n")
    location = str(tmp_path / "cache" / "index.sqlite")
    index = KnowledgeIndex(location)
    assert len(index.sync(collect([tmp_path / "docs"])).indexed) == 1
    index.close()

    again = KnowledgeIndex(location)
    assert not again.sync(collect([tmp_path / "docs"])).changed
    assert [h.rel for h in again.search(build_query("lychee", []))] == ["a.md"]
    doc.write_text("# A\n\nLychee facts, now longer.\n", encoding="utf-8")  # same mtime resolution, other size
    assert [Path(p).name for p in again.sync(collect([tmp_path / "docs"])).indexed] == ["a.md"]
    again.close()


@pytest.mark.parametrize("question", [
    'What does "signing_secret" mean?',
    "slack: how? AND OR NOT NEAR(a b)",
    "NEAR",
    "OR",
    "is it -socket-mode or +http?",
    'quote " unbalanced',
    "col:umn^2 * (paren",
    "{curly} [square] <angle> a.b/c\\d",
    "émoji 🙂 naïve café",
    "",
    "???",
])
def test_any_question_is_a_safe_match_expression(question: str) -> None:
    index = KnowledgeIndex(":memory:")
    index.sync(collect([KNOWLEDGE]))
    query = build_query(question, ["How do I add a Slack adapter?"])
    index.search(query)  # must not raise
    expression = match_expression(list(query.terms))
    assert all(part.startswith('"') and part.endswith('"') for part in expression.split(" OR ") if expression)


def test_terms_drop_stop_words_and_operators() -> None:
    assert terms("How do I add a Slack adapter?") == ["add", "slack", "adapter"]
    assert terms("socket-mode AND http OR NEAR") == ["socket", "mode", "http"]


def test_follow_up_detection_and_weights() -> None:
    assert is_follow_up("How do I configure it?")
    assert is_follow_up("And for Discord?")
    assert is_follow_up("tokens?")
    assert not is_follow_up("How do I add a Slack adapter?")
    query = build_query("Which keys does it need?", ["How do I add a Slack adapter?"])
    assert query.terms == {"keys": 1.0, "need": 1.0, "add": 0.5, "slack": 0.5, "adapter": 0.5}
    assert query.own == 2
    assert build_query("How do I add a Discord adapter?", ["Tell me about Slack"]).terms == {
        "add": 1.0, "discord": 1.0, "adapter": 1.0}
