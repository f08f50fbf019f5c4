"""The `smalltalk` middleware: greetings are answered without asking the backend, and
every finished answer gets a line below it."""

from botkit import Draft, Handled, Note, NoteKind, Section, Surface, Turn, hookimpl
from botkit.bot import Bot


class SmallTalkConfig(Section):
    greetings: list[str] = ["hi", "hello", "hey"]
    reply: str = "Hello! Ask me anything about our service."
    #: shown under every finished answer ("" for none)
    footer: str = "Answered from our FAQ."


class SmallTalk:
    def __init__(self, config: SmallTalkConfig, bot: Bot) -> None:
        self.config = config

    @hookimpl
    def botkit_message_received(self, turn: Turn) -> Handled | None:
        if turn.query.strip(" !.?").lower() in self.config.greetings:
            return Handled(reply=self.config.reply, reason="greeting")
        return None

    @hookimpl
    def botkit_render(self, draft: Draft, surface: Surface) -> None:
        if draft.final and self.config.footer:
            draft.notes.append(Note(surface.formatter.escape(self.config.footer), kind=NoteKind.CONTEXT))
