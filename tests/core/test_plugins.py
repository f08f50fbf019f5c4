"""Third-party plugins: one installed through an entry point, one a .py file named in the YAML."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

THIRD_PARTY = '''
from botkit import Backend, Done, TextDelta, hookimpl
from botkit.config import Section

class ShoutConfig(Section):
    suffix: str = "!"

class ShoutBackend(Backend):
    async def stream(self, session, question):
        yield TextDelta(question.text.upper() + self.config.suffix)
        yield Done()

@hookimpl
def botkit_register_backends(register):
    register("shout", ShoutBackend, ShoutConfig)
'''

LOCAL = '''
from botkit import hookimpl
from botkit.turn import Handled

seen = []

@hookimpl
async def botkit_message_received(turn):
    if "forbidden" in turn.query:
        return Handled(reply="Not here, sorry.", reason="test rule")
    turn.query = turn.query + " please"

@hookimpl
def botkit_render(draft, surface):
    if draft.final:
        draft.text = "<<" + draft.text + ">>"

@hookimpl
async def botkit_answer_complete(turn, answer):
    print("complete:", answer.text, flush=True)
'''


def install_entry_point_plugin(site):
    """A distribution on sys.path with a 'botkit' entry point, as pip would install it."""
    (site / "shout_plugin.py").write_text(THIRD_PARTY)
    dist = site / "botkit_shout-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: botkit-shout\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[botkit]\nshout = shout_plugin\n")


def test_entry_point_and_local_plugins_are_loaded_and_their_hooks_run(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_entry_point_plugin(site)
    (tmp_path / "local_rules.py").write_text(LOCAL)
    (tmp_path / "config.yaml").write_text(textwrap.dedent("""
        plugins: [local_rules.py]
        store: {url: "sqlite:///s.db"}
        adapters: {console: {}}
        backends: {loud: {type: shout, suffix: "!!"}}
        """))
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run([sys.executable, "-m", "botkit.cli", "plugins"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert "shout" in listing.stdout and "botkit-shout 1.2" in listing.stdout
    proc = subprocess.run([sys.executable, "-m", "botkit.cli", "run"], input="hello there\nforbidden words\n",
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "<<HELLO THERE PLEASE!!>>" in proc.stdout  # message_received rewrote, render wrapped, backend shouted
    assert "complete: HELLO THERE PLEASE!!" in proc.stdout
    assert "Not here, sorry." in proc.stdout
    assert "FORBIDDEN" not in proc.stdout


def test_a_plugin_that_fails_to_import_is_named(tmp_path):
    (tmp_path / "broken.py").write_text("import does_not_exist_anywhere\n")
    (tmp_path / "config.yaml").write_text("plugins: [broken.py]\nadapters: {console: {}}\nbackends: {b: {type: local}}\n")
    proc = subprocess.run([sys.executable, "-m", "botkit.cli", "check"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "plugin broken.py" in proc.stderr and "does_not_exist_anywhere" in proc.stderr


def test_importing_botkit_imports_no_platform_library():
    code = ("import sys, botkit, botkit.bot, botkit.cli, botkit.plugins as p; p.load_plugins(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('slack_bolt', 'slack_sdk', 'discord', 'jwt', 'microsoft_agents')]; print(bad); assert not bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
