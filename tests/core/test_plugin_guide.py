"""docs/plugins.md stays true: its code is the example package's, and its deployment runs.

Every code block whose first line is `# <path>` of a file in examples/botkit-webhook/ must be
a verbatim part of that file; the package's modules and pyproject.toml must be shown whole
(their non-blank lines, in order), so a reader of the guide has all of the plugin.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from botkit import Question, Session, Sources, TextDelta, ThreadKey

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
PACKAGE = ROOT / "examples" / "botkit-webhook"
SHOWN_WHOLE = ["pyproject.toml", *sorted(p.relative_to(PACKAGE).as_posix()
                                         for p in (PACKAGE / "botkit_webhook").glob("*.py"))]


def blocks(language: str | None = None) -> list[tuple[str, str]]:
    """(language, code) of every fenced block in the guide."""
    found = re.findall(r"^```(\w*)\n(.*?)^```$", GUIDE.read_text(encoding="utf-8"), re.M | re.S)
    return [(lang, code) for lang, code in found if language is None or lang == language]


def excerpts() -> dict[str, list[str]]:
    """The package file each block shows (by its `# path` first line) -> those blocks, in order."""
    shown: dict[str, list[str]] = {}
    for _, code in blocks():
        first, _, rest = code.partition("\n")
        path = first.removeprefix("# ")
        if first.startswith("# ") and (PACKAGE / path).is_file():
            shown.setdefault(path, []).append(rest)
    return shown


def solid(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_every_block_naming_a_file_of_the_package_is_a_part_of_it():
    shown = excerpts()
    assert set(SHOWN_WHOLE) <= set(shown)
    for path, parts in shown.items():
        text = (PACKAGE / path).read_text(encoding="utf-8")
        for part in parts:
            assert part in text, f"the guide's block for {path} differs from the file:\n{part[:400]}"


@pytest.mark.parametrize("path", SHOWN_WHOLE)
def test_the_package_is_shown_whole(path):
    shown = [line for part in excerpts()[path] for line in solid(part)]
    assert shown == solid((PACKAGE / path).read_text(encoding="utf-8")), f"the guide leaves out part of {path}"


def test_every_fixture_the_guide_names_is_offered(pytestconfig):
    plugin = pytestconfig.pluginmanager.get_plugin("botkit")
    named = set(re.findall(r"^\| `(botkit_\w+)` \|", GUIDE.read_text(encoding="utf-8"), re.M))
    assert named == {"botkit_bot", "botkit_recording", "botkit_fake_backend", "botkit_fakes"}
    assert all(hasattr(plugin, name) for name in named)


async def test_the_guides_deployment_starts_and_answers_from_its_json(botkit_bot, tmp_path, monkeypatch):
    [(_, deployment)] = [b for b in blocks("yaml") if b[1].startswith("# config.yaml")]
    [(_, pairs)] = blocks("json")
    (tmp_path / "faq.json").write_text(pairs)
    monkeypatch.setenv("WEBHOOK_SECRET", "a-secret-long-enough-for-the-adapter")
    config = yaml.safe_load(deployment)
    config["server"] = {"host": "127.0.0.1", "port": 0}  # loopback for the test, not 0.0.0.0:3000
    bot = await botkit_bot(config)
    assert {type(bot.adapters["hook"]).__name__, type(bot.backends["faq"]).__name__} == {"WebhookAdapter",
                                                                                         "JsonQABackend"}
    session = Session(ThreadKey("webhook", "hook", "c-1", "-"), "faq")
    events = [e async for e in bot.backends["faq"].stream(session, Question("how long do refunds take", "u"))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Refunds take five working days. [1]"
    assert [s.title for e in events if isinstance(e, Sources) for s in e.sources] == ["Refund policy"]
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(f"{bot.server.url}/webhook/hook", content=json.dumps({"text": "hi"}))
    assert unsigned.status_code == 401
