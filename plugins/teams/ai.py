"""What Teams shows natively of an AI answer: its label, its citations, its feedback loop.

The final message of an answer carries one root `https://schema.org/Message` entity (Teams
refuses a message with two): `additionalType: ["AIGeneratedContent"]` puts Teams' "AI
generated" label on it, and its `citation` list makes each `[N]` of the text a citation
pill whose card shows source N (`appearance`: name, url, abstract). The citations
middleware writes `[N]` as a link to the source (`[[N]](url)`): in the final message that
link becomes the bare `[N]` Teams turns into a pill, and the middleware's sources footer
is left out (the pills' reference list replaces it). Intermediate states (stream chunks,
edits) stay as the middleware wrote them.

With the feedback middleware on, its note (`kind="feedback"`) becomes Teams' own 👍/👎,
`channelData.feedbackLoopEnabled`; a vote comes back as an `invoke` named
`message/submitAction` (`feedback_vote` reads it), with the text the person typed.

Limits (Microsoft Learn, "Bot messages with AI-generated content"; docs/specs/platforms.md §7):
at most 20 citations a message, an abstract of at most 160 characters; a name is kept to 80.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botkit.adapters import Outgoing
from botkit.events import Source

from botkit_plugins.teams.activity import Reaction, _place, _user

MAX_CITATIONS = 20
ABSTRACT_MAX = 160
NAME_MAX = 80
#: characters of an informative stream update (Teams: under 1,000)
INFORMATIVE_MAX = 1_000
FEEDBACK_INVOKE = "message/submitAction"
_VOTES = {"like", "dislike"}

#: `[N]` as the citations middleware links it for Teams: `[[N]](url)`
_CITATION_LINK = re.compile(r"\[\[(\d{1,4})\]\]\([^()\s]*\)")
_MARKER = re.compile(r"(?<!\\)\[(\d{1,4})\]")


@dataclass(frozen=True, slots=True)
class Native:
    """Which native features a Teams adapter uses (its config)."""

    ai_label: bool = True
    citations: bool = True
    feedback: bool = True

    def split(self, message: Outgoing, *, answer: bool = True) -> tuple[Outgoing, dict[str, Any]]:
        """`message` as its text and notes should read, and what its activity carries besides
        for Teams to show natively (`entities`, `channelData`; see `extend`).

        Only the final message of an answer (`answer`: not a notice) is labelled and cited;
        the feedback note, in native mode, is never shown as a note."""
        extras: dict[str, Any] = {}
        notes = message.notes
        if self.feedback and any(note.kind == "feedback" for note in notes):
            notes = [note for note in notes if note.kind != "feedback"]
            extras["channelData"] = {"feedbackLoopEnabled": True}
        text, citations = message.text, []
        if message.final and answer:
            if self.citations and message.sources:
                text, citations = cite(text, message.sources)
                if citations:  # Teams lists the cited sources itself
                    notes = [note for note in notes if note.kind != "sources"]
            entity = message_entity(citations, label=self.ai_label)
            if entity is not None:
                extras["entities"] = [entity]
        if text is not message.text or notes is not message.notes:
            message = dataclasses.replace(message, text=text, notes=notes)
        return message, extras


def extend(activity: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """Add `extras` (from `Native.split`) to `activity`: entities after its own, channelData merged."""
    if "entities" in extras:
        activity["entities"] = [*(activity.get("entities") or []), *extras["entities"]]
    if "channelData" in extras:
        activity["channelData"] = {**(activity.get("channelData") or {}), **extras["channelData"]}
    return activity


def cite(text: str, sources: list[Source]) -> tuple[str, list[dict[str, Any]]]:
    """`text` with cited sources as bare `[N]` markers, and their citations (in order of
    first citation, at most `MAX_CITATIONS`)."""
    by_index = {source.index: source for source in sources}

    def bare(m: re.Match[str]) -> str:
        return f"[{m.group(1)}]" if int(m.group(1)) in by_index else m.group(0)

    text = _CITATION_LINK.sub(bare, text) if "[[" in text else text
    cited = dict.fromkeys(int(n) for n in _MARKER.findall(text) if int(n) in by_index)
    return text, [citation(by_index[n]) for n in list(cited)[:MAX_CITATIONS]]


def citation(source: Source) -> dict[str, Any]:
    """A Teams `Claim` for `source`: the pill `[index]` opens a card with its name, abstract and link."""
    name = _cut(source.title or source.doc_id or f"Source {source.index}", NAME_MAX)
    appearance: dict[str, Any] = {"@type": "DigitalDocument", "name": name,
                                  "abstract": _cut(" ".join((source.snippet or name).split()), ABSTRACT_MAX)}
    if _is_web_url(source.url):
        appearance["url"] = source.url
    return {"@type": "Claim", "position": source.index, "appearance": appearance}


def message_entity(citations: list[dict[str, Any]], *, label: bool) -> dict[str, Any] | None:
    """The root Message entity: the AI label and/or the citations; None when neither."""
    if not (label or citations):
        return None
    entity: dict[str, Any] = {"type": "https://schema.org/Message", "@type": "Message",
                              "@context": "https://schema.org", "@id": ""}
    if label:
        entity["additionalType"] = ["AIGeneratedContent"]
    if citations:
        entity["citation"] = citations
    return entity


def informative(text: str) -> str:
    """Progress text as an informative stream update takes it."""
    return _cut(text, INFORMATIVE_MAX)


def feedback_vote(activity: dict[str, Any]) -> Reaction | None:
    """The 👍/👎 of Teams' feedback loop in a `message/submitAction` invoke, with the text the
    person typed as its comment; None for any other invoke. Its `message_id` is the answer
    voted on (`replyToId`), "" when the invoke names none (the Agents Playground's)."""
    if activity.get("name") != FEEDBACK_INVOKE:
        return None
    value = activity.get("value")
    if not isinstance(value, dict) or value.get("actionName") != "feedback":
        return None
    action = value.get("actionValue")
    action = action if isinstance(action, dict) else {}
    vote, message_id = action.get("reaction"), activity.get("replyToId") or ""
    if vote not in _VOTES or not isinstance(message_id, str):
        return None
    place = _place(activity, message_id)
    if place is None:
        return None
    thread, conversation = place
    return Reaction(thread, conversation, message_id, _user(activity), (vote,), _feedback_text(action.get("feedback")))


def _feedback_text(feedback: Any) -> str | None:
    """The text of the feedback form: JSON text `{"feedbackText": "…"}` (Teams), or the text
    itself (the Agents Playground)."""
    if not isinstance(feedback, str):
        return None
    try:
        form = json.loads(feedback)
    except ValueError:
        form = None
    text = form.get("feedbackText") if isinstance(form, dict) else feedback
    return (text.strip() or None) if isinstance(text, str) else None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _is_web_url(url: str | None) -> bool:
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
