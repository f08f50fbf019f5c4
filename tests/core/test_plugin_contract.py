"""The plugin contract (issue 15): what botkit cannot honour is refused when a plugin is
registered, naming it; whatever a registered plugin returns or raises from a hook, its
thread goes on answering; hooks are called only through `Plugins`' typed methods.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import botkit
from botkit import hookimpl, hookspecs
from botkit.plugins import PluginError, Plugins
from botkit.testing import running_bot


class Wrapper:
    @hookimpl(wrapper=True)
    def botkit_message_received(self, turn):
        return (yield)


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def botkit_answer_complete(self, turn, answer):
        yield


class AsyncRender:
    @hookimpl
    async def botkit_render(self, draft, surface):
        draft.text = "never shown"


@pytest.mark.parametrize("plugin, hook", [(Wrapper(), "botkit_message_received"),
                                          (OldStyleWrapper(), "botkit_answer_complete"),
                                          (AsyncRender(), "botkit_render")])
def test_what_botkit_cannot_call_is_refused_at_registration_naming_the_plugin(plugin, hook):
    plugins = Plugins()
    with pytest.raises(PluginError) as refused:
        plugins.add(plugin, "third-party", "test")
    assert refused.value.plugin == "third-party" and hook in str(refused.value)
    assert plugins.get("third-party") is None  # nothing of it stays registered


class Hostile:
    """Every hook answered with what its contract does not allow."""

    def __init__(self, verdict: object) -> None:
        self.verdict = verdict

    @hookimpl
    async def botkit_message_received(self, turn):
        if isinstance(self.verdict, Exception):
            raise self.verdict
        return self.verdict

    @hookimpl
    def botkit_answer_complete(self, turn, answer):
        return "not None"

    @hookimpl
    async def botkit_reaction(self, thread, message_id, user, reaction, comment):
        raise RuntimeError("observer broke")


CONFIG = {"adapters": {"rec": {"type": "recording"}},
          "backends": {"b": {"type": "fake", "answer": "Answer to {question}."}}}


@pytest.mark.parametrize("verdict", [False, "stop", 42, {"reply": "x"}, RuntimeError("middleware broke")],
                         ids=["False", "str", "int", "dict", "raises"])
async def test_a_hook_result_of_the_wrong_type_never_wedges_the_thread(tmp_path, caplog, verdict):
    caplog.set_level(logging.WARNING, logger="botkit")
    async with running_bot(CONFIG, tmp_path) as bot:
        bot.plugins.add(Hostile(verdict), "hostile", "test")
        rec = bot.adapters["rec"]
        for n in range(3):  # the same thread, one after another
            assert await rec.inject(f"question {n}", event_id=f"E{n}")
        await bot.idle(5)
        await bot.plugins.reaction(adapter=rec, thread=rec.thread(), message_id="m1", user="u2", reaction="+1")
    assert rec.texts() == [f"Answer to question {n}." for n in range(3)]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all("hostile" in r.getMessage() for r in errors), [r.getMessage() for r in errors]
    assert any("botkit_reaction" in r.getMessage() for r in errors)


async def test_hook_tracing_logs_each_implementation_called(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("BOTKIT_TRACE_HOOKS", "1")
    caplog.set_level(logging.DEBUG, logger="botkit.hooks")
    async with running_bot({**CONFIG, "middlewares": {"citations": {}}}, tmp_path) as bot:
        await bot.adapters["rec"].inject("traced?")
        await bot.idle(5)
    lines = [r.getMessage() for r in caplog.records if r.name == "botkit.hooks"]
    assert any(re.match(r"botkit_answer_complete -> core:metrics: [\d.]+ ms, returned NoneType", line)
               for line in lines), lines


def test_hooks_are_named_as_strings_only_in_the_plugin_layer():
    """Everything else calls `Plugins`' methods: a renamed hook breaks at import, not at run."""
    hooks = {name for name in dir(hookspecs) if name.startswith("botkit_")}
    roots = [Path(botkit.__file__).parent, Path(botkit.__file__).parents[1] / "plugins"]
    allowed = {Path(botkit.__file__).with_name("plugins.py"), Path(hookspecs.__file__)}
    found = [f"{path}: {name}" for root in roots for path in root.rglob("*.py") if path not in allowed
             for name in re.findall(r"""["'](botkit_[a-z_]+)["']""", path.read_text(encoding="utf-8"))
             if name in hooks]
    assert found == []
