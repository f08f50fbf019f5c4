"""Splitting files into passages and quotable units."""

from pathlib import Path

from botkit_plugins.local.documents import parse, sentences, slug

DOC = """---
layout: page
---
# Widget guide

Widgets are small. They help, e.g. Bob uses them.

## Setting up widgets

Install the widget:

```sh
# not a heading: inside a code fence
pip install widget
```

- `size`: how big.
- `colour`: which colour,
  continued on the next line.

## Removing widgets ##

> Quoted advice. Be careful!
"""


def test_markdown_is_split_at_headings_with_title_and_anchors() -> None:
    doc = parse(DOC, Path("guide.md"))
    assert doc.title == "Widget guide"
    assert [(p.heading, p.anchor) for p in doc.passages] == [
        ("Widget guide", ""), ("Setting up widgets", "setting-up-widgets"), ("Removing widgets", "removing-widgets")]
    setup = doc.passages[1]
    assert [u.kind for u in setup.units] == ["text", "code", "item", "item"]
    assert "# not a heading" in setup.units[1].text
    assert setup.units[3].text == "`colour`: which colour, continued on the next line."
    assert [u.text for u in doc.passages[2].units] == ["Quoted advice.", "Be careful!"]


def test_sentences_keep_abbreviations_together() -> None:
    assert sentences("Widgets are small. They help, e.g. Bob uses them. Done!") == [
        "Widgets are small.", "They help, e.g. Bob uses them.", "Done!"]


def test_front_matter_title_and_text_files() -> None:
    assert parse("---\ntitle: 'From front matter'\n---\nBody.\n", Path("x.md")).title == "From front matter"
    text = parse("# not a heading in a .txt file\n\nFirst paragraph. Second sentence.\n", Path("release_notes.txt"))
    assert text.title == "Release notes"
    assert len(text.passages) == 1 and text.passages[0].units[-1].text == "Second sentence."


def test_long_sections_become_several_passages() -> None:
    body = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(12))
    doc = parse(f"# Long\n\n## Part\n\n{body}\n", Path("long.md"))
    assert len(doc.passages) > 1
    assert all(p.heading == "Part" for p in doc.passages)
    assert all(len(p.body) < 1600 for p in doc.passages)


def test_slug() -> None:
    assert slug("Socket Mode or the HTTP Events API") == "socket-mode-or-the-http-events-api"
    assert slug("What's `new`?") == "whats-new"
