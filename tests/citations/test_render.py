"""Citation rendering: markers, links per markup, footer, patterns, streaming safety."""

from __future__ import annotations

import re

import pytest

from botkit.adapters import Surface
from botkit.events import Draft, Source
from botkit.markup import formatter_for

from botkit_plugins.citations import CitationsConfig
from botkit_plugins.citations.middleware import Citations
from botkit_plugins.citations.render import fill_pattern, footer, hide_partial_marker, resolve, rewrite

MARKUPS = ["plain", "markdown", "slack", "teams"]


def sources() -> list[Source]:
    return [
        Source(1, "Install guide", url="https://docs.example.com/install", doc_id="install"),
        Source(2, "Install guide", url="https://docs.example.com/install#proxy", doc_id="install"),
        Source(3, "FAQ", url="https://docs.example.com/faq", doc_id="faq"),
        Source(4, "Never cited", url="https://docs.example.com/other", doc_id="other"),
    ]


def surface(markup: str, max_length: int = 4000) -> Surface:
    return Surface("test", "test", markup, max_length)


def render(text: str, markup: str, final: bool = True, srcs: list[Source] | None = None, **cfg) -> Draft:
    draft = Draft(text=text, sources=sources() if srcs is None else srcs, final=final)
    Citations(CitationsConfig(**cfg)).botkit_render(draft, surface(markup))
    return draft


# -- links per markup ----------------------------------------------------------------------


@pytest.mark.parametrize(("markup", "expected"), [
    ("plain", "Run it [3]."),
    ("slack", "Run it <https://docs.example.com/faq|[3]>."),
    ("markdown", "Run it [[3]](<https://docs.example.com/faq>)."),
    ("teams", "Run it [[3]](https://docs.example.com/faq)."),
])
def test_marker_becomes_platform_link(markup: str, expected: str) -> None:
    assert render("Run it [3].", markup).text == expected


def test_adjacent_and_listed_markers() -> None:
    out = render("A [1][3] B [1, 3] C [1], [3].", "slack").text
    one, three = "<https://docs.example.com/install|[1]>", "<https://docs.example.com/faq|[3]>"
    assert out == f"A {one}{three} B {one}{three} C {one}{three}."


# -- dangling markers -------------------------------------------------------------------------


@pytest.mark.parametrize("markup", MARKUPS)
def test_marker_without_source_is_removed(markup: str) -> None:
    draft = render("True [9]. Also [3][9] and [0] end [12].", markup)
    assert "9" not in draft.text and "[0]" not in draft.text and "12" not in draft.text
    assert draft.text.startswith("True.")
    assert "[3]" in draft.text
    assert "docs.example.com/other" not in draft.text


def test_no_sources_at_all_removes_every_marker_and_adds_no_footer() -> None:
    draft = render("Answer [1] here [2].", "markdown", srcs=[])
    assert draft.text == "Answer here."
    assert draft.notes == []


def test_markers_inside_code_are_left_alone() -> None:
    text = "Use `xs[1]` and\n```python\nys[9] = xs[3]\n```\nsee [3]."
    out = render(text, "markdown").text
    assert "`xs[1]`" in out and "ys[9] = xs[3]" in out
    assert out.endswith("see [[3]](<https://docs.example.com/faq>).")


def test_existing_links_are_not_rewritten() -> None:
    text = "See [docs](https://a.io) and [[3]](<https://b.io>) and [3](https://c.io)."
    assert render(text, "markdown").text == text


# -- streaming: partial markers never show --------------------------------------------------


@pytest.mark.parametrize("markup", MARKUPS)
def test_every_prefix_of_a_streamed_answer_shows_no_broken_marker(markup: str) -> None:
    answer = "Install with pip [1][2]. Proxies need a setting [3], see [12] and [1, 3]."
    final = render(answer, markup).text
    for cut in range(len(answer) + 1):
        shown = render(answer[:cut], markup, final=False).text
        # nothing that looks like the start of a marker is left bare at the end
        assert not re.search(r"\[\d*(,\s*\d*)*\s*$", shown), (cut, shown)
        # every link shown is complete and is one the final answer also has
        for piece in re.findall(r"<https[^>]*>|\]\((?:<[^>]*>|[^)]*)\)", shown):
            assert piece in final, (cut, shown)
        assert "[12]" not in shown


def test_hide_partial_marker() -> None:
    assert hide_partial_marker("see [") == "see"
    assert hide_partial_marker("see [1") == "see"
    assert hide_partial_marker("see [1, ") == "see"
    assert hide_partial_marker("see [1]") == "see [1]"
    assert hide_partial_marker("list [a") == "list [a"
    assert hide_partial_marker("```\nxs[") == "```\nxs["  # inside an open code block


def test_final_draft_keeps_text_that_only_looks_partial() -> None:
    assert render("an array [", "plain", final=True).text == "an array ["


def test_split_marker_across_chunks_links_once_complete() -> None:
    chunks = ["Proxies [", "3", "] work."]
    shown = [render("".join(chunks[:i + 1]), "slack", final=False).text for i in range(3)]
    assert shown == ["Proxies", "Proxies", "Proxies <https://docs.example.com/faq|[3]> work."]


# -- footer ---------------------------------------------------------------------------------


def test_footer_lists_only_cited_sources_in_citation_order_deduplicated() -> None:
    draft = render("First [3]. Then [2] and [1].", "plain")
    [note] = draft.notes
    assert note.kind == "sources" and note.placement == "below"
    assert note.text.splitlines() == [
        "Sources:",
        "[3] FAQ — https://docs.example.com/faq",
        "[2][1] Install guide — https://docs.example.com/install#proxy",
    ]
    assert "Never cited" not in note.text


@pytest.mark.parametrize(("markup", "line"), [
    ("slack", "• [1][2] <https://docs.example.com/install|Install guide>"),
    ("markdown", "- [1][2] [Install guide](<https://docs.example.com/install>)"),
    ("teams", "- [1][2] [Install guide](https://docs.example.com/install)"),
])
def test_footer_markup(markup: str, line: str) -> None:
    text = render("A [1][2].", markup).notes[0].text
    assert text.splitlines()[1] == line
    assert text.splitlines()[0] in ("*Sources*", "**Sources**")


def test_footer_only_on_the_final_draft() -> None:
    assert render("A [1].", "markdown", final=False).notes == []
    assert len(render("A [1].", "markdown", final=True).notes) == 1


def test_max_sources_shortens_with_and_n_more() -> None:
    many = [Source(i, f"Doc {i}", url=f"https://x.io/{i}", doc_id=f"d{i}") for i in range(1, 9)]
    text = " ".join(f"s [{i}]" for i in range(1, 9))
    note = render(text, "plain", srcs=many, max_sources=3).notes[0].text
    lines = note.splitlines()
    assert lines[1:4] == [f"[{i}] Doc {i} — https://x.io/{i}" for i in (1, 2, 3)]
    assert lines[-1] == "and 5 more"


def test_footer_stays_within_the_platform_budget() -> None:
    many = [Source(i, "T" * 100, url=f"https://x.io/{'p' * 80}/{i}", doc_id=f"d{i}") for i in range(1, 40)]
    text = " ".join(f"s [{i}]" for i in range(1, 40))
    draft = Draft(text=text, sources=many, final=True)
    Citations(CitationsConfig(max_sources=40)).botkit_render(draft, surface("markdown", max_length=2000))
    note = draft.notes[0].text
    assert len(note) <= 2000 // 4
    assert re.search(r"and \d+ more$", note)
    markdown = formatter_for("markdown")
    note = footer(rewrite(text, resolve(many), markdown, "numeric")[1], markdown, "numeric",
                  max_sources=40, budget=500)
    assert len(note) <= 500
    assert re.search(r"and \d+ more$", note)


def test_long_titles_are_cut_and_escaped() -> None:
    srcs = [Source(1, "A *bold* [weird] " + "x" * 300, url="https://x.io/1")]
    line = render("a [1]", "markdown", srcs=srcs, max_title_length=40).notes[0].text.splitlines()[1]
    assert "…" in line and "\\*bold\\*" in line and "\\[weird\\]" in line
    slack = render("a [1]", "slack", srcs=[Source(1, "R&D <team>", url="https://x.io")]).notes[0].text
    assert "R&amp;D &lt;team&gt;" in slack


def test_source_without_url_is_listed_unlinked() -> None:
    draft = render("a [1]", "slack", srcs=[Source(1, "Offline doc")])
    assert draft.text == "a [1]"
    assert draft.notes[0].text.splitlines()[1] == "• [1] Offline doc"


def test_unsafe_url_scheme_is_never_linked() -> None:
    draft = render("a [1]", "markdown", srcs=[Source(1, "X", url="javascript:alert(1)")])
    assert "javascript" not in draft.text + draft.notes[0].text


# -- styles ---------------------------------------------------------------------------------


def test_footnotes_style_numbers_documents_in_citation_order() -> None:
    draft = render("Proxy [3]. Install [1][2]. Again [2].", "markdown", style="footnotes")
    assert draft.text == "Proxy¹. Install². Again²."
    assert draft.notes[0].text.splitlines()[1:] == [
        "- ¹ [FAQ](<https://docs.example.com/faq>)",
        "- ² [Install guide](<https://docs.example.com/install>)",
    ]


@pytest.mark.parametrize("markup", MARKUPS)
def test_none_style_removes_markers_and_footer(markup: str) -> None:
    draft = render("Proxy [3]. Install [1][2] now.", markup, style="none")
    assert draft.text == "Proxy. Install now."
    assert draft.notes == []


def test_footer_title_can_be_changed_or_dropped() -> None:
    assert render("a [1]", "plain", footer_title="Read more").notes[0].text.startswith("Read more:")
    assert render("a [1]", "plain", footer_title="").notes[0].text.startswith("[1] ")


# -- patterns -------------------------------------------------------------------------------


def meta_source(**meta) -> Source:
    return Source(1, "Fallback title", url="https://fallback.io/x", doc_id="doc 7",
                  metadata={"doc": {"title": "Real title", **meta}, "part": {"section": "s2"}})


def test_url_and_title_patterns_fill_from_metadata() -> None:
    refs = resolve([meta_source()], "https://docs.example.com/{doc.id}#{part.section}", "{doc.title} ({part.section})")
    assert refs[1].url == "https://docs.example.com/doc%207#s2"
    assert refs[1].title == "Real title (s2)"


def test_doc_fields_read_vectara_style_document_metadata() -> None:
    src = Source(1, "T", doc_id="d1", metadata={"document": {"slug": "intro"}, "part": {"page": 3}})
    assert fill_pattern("https://x.io/{doc.slug}?p={part.page}&id={doc.id}", src, url=True) == \
        "https://x.io/intro?p=3&id=d1"


def test_patterns_fall_back_when_a_field_is_missing() -> None:
    refs = resolve([meta_source()], "https://docs.example.com/{doc.slug}", "{doc.subtitle}")
    assert refs[1].url == "https://fallback.io/x"
    assert refs[1].title == "Fallback title"


def test_fill_pattern_reads_attributes_and_metadata_ids() -> None:
    src = Source(5, "T", doc_id="abc", metadata={"doc": {"id": "from-meta"}})
    assert fill_pattern("{index}-{doc_id}-{doc.id}", src) == "5-abc-from-meta"
    assert fill_pattern("{doc.id}", Source(1, "T", doc_id="abc")) == "abc"
    assert fill_pattern("{nope}", src) is None


def test_pattern_links_show_in_text_and_footer() -> None:
    draft = render("x [1]", "slack", srcs=[meta_source()], url_pattern="https://d.io/{doc.id}")
    assert draft.text == "x <https://d.io/doc%207|[1]>"
    assert "<https://d.io/doc%207|Fallback title>" in draft.notes[0].text


def test_deduplication_falls_back_to_url_without_doc_id() -> None:
    srcs = [Source(1, "A", url="https://a.io"), Source(2, "A again", url="https://a.io"), Source(3, "C")]
    _, entries = rewrite("x [1] [2] [3]", resolve(srcs), formatter_for("plain"), "numeric")
    assert [(e.title, e.numbers) for e in entries] == [("A", [1, 2]), ("C", [3])]


def test_render_is_idempotent_on_a_fresh_draft() -> None:
    first = render("A [1] B [3].", "slack")
    second = render("A [1] B [3].", "slack")
    assert (first.text, first.notes) == (second.text, second.notes)
