"""Each built-in plugin stands alone: nothing under plugins/<x>/ reaches into plugins/<y>/.

What plugins share lives in the core (`botkit.http`, `botkit.chat_completions`,
`botkit.testing`), where a third-party plugin finds it too. Every reference counts: an
import at module level or in a function, under `TYPE_CHECKING` or not, absolute
(`botkit_plugins.y`) or relative (`..y`), and a `"botkit_plugins.y..."` string (a lazy
`"module:Class"` registration).
"""

from __future__ import annotations

import ast
from pathlib import Path

import botkit_plugins

PLUGINS = Path(botkit_plugins.__file__).parent
PACKAGE = "botkit_plugins"


def other_plugins(path: Path, root: Path = PLUGINS) -> set[str]:
    """The built-in plugins other than its own that the module at `path` refers to."""
    folder = path.relative_to(root).parent.parts
    package = [PACKAGE, *folder]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = [*package[:len(package) - node.level + 1]] if node.level else []
            base += node.module.split(".") if node.module else []
            names.add(".".join(base))
            names.update(".".join([*base, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PACKAGE + "."):
            names.add(node.value.partition(":")[0])
    reached = {name.split(".")[1] for name in names if name.startswith(PACKAGE + ".")}
    return reached - {folder[0]}


def test_no_plugin_refers_to_another_plugins_modules():
    modules = [p for p in sorted(PLUGINS.rglob("*.py")) if len(p.relative_to(PLUGINS).parts) > 1]
    folders = {d.name for d in PLUGINS.iterdir() if (d / "__init__.py").is_file()}
    assert {p.relative_to(PLUGINS).parts[0] for p in modules} == folders >= {"vectara", "ragflow", "openai"}
    crossings = {str(p.relative_to(PLUGINS)): sorted(found) for p in modules if (found := other_plugins(p))}
    assert crossings == {}


def test_every_way_of_reaching_another_plugin_is_found(tmp_path):
    module = tmp_path / "ragflow" / "fake.py"
    module.parent.mkdir()
    lines = {
        "from botkit_plugins.openai.fake import FakeOpenAI": {"openai"},
        "import botkit_plugins.vectara.wire": {"vectara"},
        "from botkit_plugins import local": {"local"},
        "from ..llamacloud import fake": {"llamacloud"},
        "from .. import citations": {"citations"},
        "if TYPE_CHECKING:\n    from botkit_plugins.slack.adapter import SlackAdapter": {"slack"},
        "def later():\n    from botkit_plugins.teams import auth": {"teams"},
        "TARGET = 'botkit_plugins.discord.adapter:DiscordAdapter'": {"discord"},
        "from .answer import rewrite_citations\nfrom botkit_plugins.ragflow import RagflowConfig": set(),
        "from botkit.testing import FakeServer\nimport botkit_plugins": set(),
    }
    for source, expected in lines.items():
        module.write_text(source + "\n", encoding="utf-8")
        assert other_plugins(module, tmp_path) == expected, source
