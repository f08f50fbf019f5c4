"""Issue 16, a newcomer's first hour: every command does what its help and the README say,
run as a newcomer runs them (the real CLI in a process, a real store, fakes on loopback)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from botkit.cli import build_parser, main
from botkit.plugins import Component, PluginError, load_plugins
from botkit.testing import free_port, write_config
from botkit_plugins.discord.testing import FakeDiscord
from botkit_plugins.llamacloud.fake import FakeLlamaCloud
from botkit_plugins.openai.fake import FakeOpenAI
from botkit_plugins.ragflow.fake import FakeRagflow
from botkit_plugins.teams.testing import FakeBotFramework
from botkit_plugins.vectara.fake import FakeVectara

FAKE = "plugins: [botkit.testing]\n"


def botkit(*argv: str, cwd: Path, stdin: bytes | None = None, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    """`botkit ARGV` as a process, the way a person runs it."""
    environment = {k: v for k, v in os.environ.items() if k != "BOTKIT_CONFIG"} | (env or {})
    return subprocess.run([sys.executable, "-m", "botkit.cli", *argv], cwd=cwd, input=stdin, env=environment,
                          capture_output=True, timeout=timeout)


def write(tmp_path: Path, text: str, name: str = "my.yaml") -> Path:
    """`text` (indented like the test) as a config file; a leading FAKE stays as it is."""
    prefix = FAKE if text.startswith(FAKE) else ""
    path = tmp_path / name
    path.write_text(prefix + textwrap.dedent(text[len(prefix):]))
    return path


def refunds_docs(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "refunds.md").write_text(
        "# Refunds\n\nRefunds are processed within 14 days of the return arriving at our warehouse.\n\n"
        "## Shipping\n\nStandard delivery takes 3-5 business days within the country.\n")


# -- 1, 7, 13: ask and run from a config with only a backend ---------------------------------------


def test_ask_from_a_config_with_only_a_backend_shows_what_the_bot_would_say(tmp_path):
    refunds_docs(tmp_path)
    write(tmp_path, """
        backends: {kb: {type: local, paths: [./docs]}}
        middlewares: {citations: {}}
        """)
    done = botkit("ask", "-c", "my.yaml", "How long do refunds take?", cwd=tmp_path)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "14 days" in out and "3-5 business days" not in out
    assert "Sources" in out and "Refunds" in out  # the citations middleware's footer, as the console shows it
    assert done.stderr == b""  # the answer alone: no start-up INFO lines (log.level is the running bot's)
    louder = botkit("ask", "-v", "-c", "my.yaml", "How long do refunds take?", cwd=tmp_path)
    assert " INFO botkit: botkit started" in louder.stderr.decode()
    raw = botkit("ask", "--raw", "-c", "my.yaml", "How long do refunds take?", cwd=tmp_path)
    assert raw.returncode == 0, raw.stderr.decode()
    assert "[1]" in raw.stdout.decode() and "Sources" not in raw.stdout.decode()


def test_ask_renders_through_the_configured_middlewares(tmp_path):
    write(tmp_path, FAKE + """
        backends: {b: {type: fake, answer: "It is blue [1].", score: 0.1,
                       sources: [{title: Colours, url: "https://example.com/c"}]}}
        middlewares: {citations: {}, fcs_warning: {threshold: 0.5}}
        """)
    done = botkit("ask", "-c", "my.yaml", "What colour?", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "may not be supported by the sources" in out and "Colours" in out
    raw = botkit("ask", "-c", "my.yaml", "--raw", "What colour?", cwd=tmp_path).stdout.decode()
    assert "It is blue [1]." in raw and "may not be supported" not in raw


async def test_ask_raw_answers_from_a_backend_that_retrieves_from_another(tmp_path):
    refunds_docs(tmp_path)
    async with FakeOpenAI(answer="Refunds take 14 days [1].", api_key="sk-first-hour") as model:
        write(tmp_path, f"""
            backends:
              kb: {{type: local, paths: [./docs]}}
              llm: {{type: openai, base_url: "{model.url}/v1", model: m, api_key: sk-first-hour,
                     retrieval: {{backend: kb}}}}
            routes: [{{backend: llm}}]
            """)
        raw = await asyncio.to_thread(botkit, "ask", "--raw", "-c", "my.yaml", "How long do refunds take?",
                                      cwd=tmp_path)
    assert raw.returncode == 0, raw.stderr.decode()
    assert raw.stdout.decode().startswith("Refunds take 14 days [1].")
    assert "[1] Refunds" in raw.stdout.decode()  # the passage the local backend retrieved for the model


def test_run_without_adapters_chats_in_the_console_and_history_commands_need_no_adapter(tmp_path):
    write(tmp_path, FAKE + """
        store: {url: "sqlite:///h.db"}
        backends: {b: {type: fake, answer: "Answer to {question}"}}
        """)
    done = botkit("run", "-c", "my.yaml", cwd=tmp_path, stdin=b"first question\n")
    assert done.returncode == 0, done.stderr.decode()
    assert "Answer to first question" in done.stdout.decode()
    write(tmp_path, 'store: {url: "sqlite:///h.db"}\n', "store-only.yaml")
    listed = botkit("sessions", "list", "--json", "-c", "store-only.yaml", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr.decode()
    assert [s["turn_count"] for s in json.loads(listed.stdout)] == [1]


def test_a_new_run_of_the_console_answers_again_instead_of_pointing_above(tmp_path):
    refunds_docs(tmp_path)
    write(tmp_path, """
        store: {url: "sqlite:///h.db"}
        backends: {kb: {type: local, paths: [./docs]}}
        """)
    for _ in range(2):  # the second run's screen shows no earlier answer: it must not say "my answer above"
        done = botkit("run", "-c", "my.yaml", cwd=tmp_path, stdin=b"How long do refunds take?\n")
        assert done.returncode == 0, done.stderr.decode()
        assert "14 days" in done.stdout.decode(), done.stdout.decode()
    listed = json.loads(botkit("sessions", "list", "--json", "-c", "my.yaml", cwd=tmp_path).stdout)
    assert [s["turn_count"] for s in listed] == [1, 1] and len({s["thread"] for s in listed}) == 2


# -- 5, 6: stored text is shown as it was written; undecodable input is kept ---------------------


def test_sessions_show_prints_markup_in_questions_and_answers_as_text(tmp_path):
    write(tmp_path, FAKE + """
        store: {url: "sqlite:///h.db"}
        backends: {b: {type: fake, answer: "Ask in [discord] or [bold]here[/bold] :+1:"}}
        """)
    assert botkit("run", "-c", "my.yaml", cwd=tmp_path, stdin=b"what does [/] do? :smile:\n").returncode == 0
    shown = botkit("sessions", "show", "-c", "my.yaml", "1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr.decode()
    out = shown.stdout.decode()
    assert "what does [/] do? :smile:" in out  # neither markup nor an emoji code
    assert "Ask in [discord] or [bold]here[/bold] :+1:" in out


def test_undecodable_input_is_replaced_and_kept(tmp_path):
    write(tmp_path, FAKE + """
        store: {url: "sqlite:///h.db"}
        backends: {b: {type: fake, answer: "Answer to {question}"}}
        """)
    done = botkit("run", "-c", "my.yaml", cwd=tmp_path, stdin=b"caf\xe9 and cr\xe8me?\n")
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()
    exported = botkit("sessions", "export", "-c", "my.yaml", cwd=tmp_path)
    turns = [json.loads(line) for line in exported.stdout.decode().splitlines()]
    assert [t["question"] for t in turns] == ["caf\ufffd and cr\ufffdme?"]
    assert turns[0]["status"] == "complete"


# -- 3: the server section -----------------------------------------------------------------------


def test_a_server_section_listens_and_check_says_so(tmp_path):
    port = free_port()
    write(tmp_path, FAKE + f"""
        server: {{host: 127.0.0.1, port: {port}}}
        backends: {{b: {{type: fake}}}}
        log: {{level: INFO}}
        """)
    checked = botkit("check", "-c", "my.yaml", cwd=tmp_path)
    assert f"server:      listens on http://127.0.0.1:{port}" in checked.stdout.decode()
    process = subprocess.Popen([sys.executable, "-m", "botkit.cli", "run", "-c", "my.yaml"], cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the bot says when it listens; then /healthz answers
            if b"HTTP server listening" in line:
                break
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert json.load(response) == {"status": "ok"}
    finally:
        process.communicate(b"", timeout=30)
    assert process.returncode == 0
    write(tmp_path, FAKE + "backends: {b: {type: fake}}\n", "plain.yaml")
    assert "server:      none" in botkit("check", "-c", "plain.yaml", cwd=tmp_path).stdout.decode()


# -- 8: start-up failures are one line -------------------------------------------------------------


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        write(tmp_path, FAKE + f"server: {{port: {port}}}\nbackends: {{b: {{type: fake}}}}\nlog: {{level: ERROR}}\n")
        done = botkit("run", "-c", "my.yaml", cwd=tmp_path, stdin=b"")
    err = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0] and "address already in use" in err[0].lower()


def test_an_unreachable_platform_is_one_line_without_the_token(tmp_path):
    port = free_port()  # nothing listens there
    write(tmp_path, f"""
        adapters:
          slack: {{bot_token: "xoxb-first-hour-0000", app_token: "xapp-1-first-hour",
                   api_url: "http://127.0.0.1:{port}/api/"}}
        backends: {{kb: {{type: local}}}}
        log: {{level: ERROR}}
        """)
    done = botkit("run", "-c", "my.yaml", cwd=tmp_path)
    err = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1
    assert len(err) == 1 and err[0].startswith("botkit: adapter 'slack' could not start:"), err
    assert "xoxb-first-hour" not in done.stderr.decode()


# -- 11: every config mistake at once ----------------------------------------------------------------


def test_config_errors_are_reported_together(tmp_path, monkeypatch):
    monkeypatch.delenv("FIRST_HOUR_UNSET", raising=False)
    write(tmp_path, """
        adapters:
          console: {prompt: "${FIRST_HOUR_UNSET}"}
        backends:
          kb: {type: local, paths: [./missing-docs]}
          kb: {type: local}
        routes:
          - {backend: kbb}
        """)
    done = botkit("check", "-c", "my.yaml", cwd=tmp_path)
    err = done.stderr.decode().splitlines()
    assert done.returncode == 2
    assert err == [
        "my.yaml:3: adapters.console.prompt: environment variable FIRST_HOUR_UNSET is not set "
        "(set it, or write ${FIRST_HOUR_UNSET:-default})",
        "my.yaml:5: backends.kb.paths[0]: no file or folder 'missing-docs' (relative paths start at the config "
        "file's folder)",
        "my.yaml:6: backends.kb: duplicate key (also on line 5); write it once",
        "my.yaml:8: routes[0].backend: no backend named 'kbb' (did you mean 'kb'?)",
    ]


# -- 9: what to install ------------------------------------------------------------------------------


def test_a_missing_library_names_what_to_install_from_anywhere():
    component = Component("adapter", "slack", "botkit_first_hour_missing:Adapter", object, "slack")
    with pytest.raises(PluginError) as raised:
        component.load()
    assert "pip install 'slack-bolt>=1.28' 'slack-sdk>=3.37'" in str(raised.value)
    assert "botkit[slack]" not in str(raised.value)
    third_party = Component("backend", "shout", "botkit_first_hour_missing:Shout", object, "shout")
    with pytest.raises(PluginError) as raised:
        third_party.load()
    assert "is not installed" in str(raised.value) and "pip install" not in str(raised.value)  # not botkit's to say


def test_the_readme_installs_from_a_clone_or_names_the_requirements():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    extras = {"slack", "discord", "teams", "postgres", "fast", "all", "dev"}
    lines = [line for line in readme.splitlines() if "pip install" in line]
    assert lines
    for line in lines:
        assert "botkit[" not in line, line  # botkit is not on the package index
        for extra in (part.split("]")[0] for part in line.split(".[")[1:]):
            assert set(extra.split(",")) <= extras, line


# -- 10: the container's admin commands --------------------------------------------------------------


def test_botkit_config_names_the_config_for_admin_commands(tmp_path):
    write(tmp_path, FAKE + """
        store: {url: "sqlite:///h.db"}
        backends: {b: {type: fake}}
        """, "deployed.yaml")
    assert botkit("run", "-c", "deployed.yaml", cwd=tmp_path, stdin=b"hello\n").returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = botkit("sessions", "list", "--json", cwd=elsewhere, env={"BOTKIT_CONFIG": str(tmp_path / "deployed.yaml")})
    assert listed.returncode == 0, listed.stderr.decode()
    assert len(json.loads(listed.stdout)) == 1
    bare = botkit("sessions", "list", cwd=elsewhere)
    assert "keeps no history" in bare.stderr.decode()  # an empty table is explained, not silent
    dockerfile = (Path(__file__).parents[2] / "Dockerfile").read_text()
    assert "BOTKIT_CONFIG=/config/config.yaml" in dockerfile


# -- 12: CLI conventions -------------------------------------------------------------------------------


def test_version_and_log_options_anywhere_in_any_case(tmp_path, capsys):
    with pytest.raises(SystemExit) as leaving:
        main(["--version"])
    assert leaving.value.code == 0 and capsys.readouterr().out.startswith("botkit ")
    parser = build_parser(load_plugins())
    assert parser.parse_args(["--log-level", "debug", "check"]).log_level == "DEBUG"
    assert parser.parse_args(["check", "--log-level", "Warning"]).log_level == "WARNING"
    after = parser.parse_args(["sessions", "list", "-vv", "-c", "x.yaml"])
    assert (after.verbose, after.config) == (2, "x.yaml")
    assert parser.parse_args(["-q", "run"]).quiet == 1
    assert parser.parse_args(["vectara", "chats", "-c", "x.yaml"]).config == "x.yaml"
    assert parser.parse_args(["-c", "x.yaml", "sessions", "list"]).config == "x.yaml"  # as docker compose -f
    assert parser.parse_args(["-c", "x.yaml", "ask", "-c", "y.yaml", "hi"]).config == "y.yaml"
    with pytest.raises(SystemExit) as leaving:
        main(["-c", "x.yaml", "completion", "bash"])
    assert leaving.value.code == 2 and "botkit completion reads no config (-c)" in capsys.readouterr().err
    assert parser.parse_args(["plugins", "-c", "x.yaml", "--json"]).json
    assert parser.parse_args(["feedback", "export", "--since", "7d"]).since < parser.parse_args(
        ["feedback", "export", "--since", "1h"]).since


def test_plugins_lists_the_configs_plugins_as_json(tmp_path):
    write(tmp_path, FAKE + "backends: {b: {type: fake}}\n")
    done = botkit("plugins", "-c", "my.yaml", "--json", cwd=tmp_path)
    listed = json.loads(done.stdout)
    assert {"kind": "backend", "type": "fake", "plugin": "botkit.testing"} in listed["components"]
    assert {"namespace": "feedback", "plugin": "feedback", "migrations": 1} in listed["tables"]  # its own table


def test_bash_completion_completes_commands_options_and_choices(tmp_path):
    script = tmp_path / "botkit.bash"
    script.write_text(botkit("completion", "bash", cwd=tmp_path).stdout.decode())

    def complete(*words: str) -> list[str]:
        words_list = " ".join(f"'{w}'" for w in ("botkit", *words))
        done = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({words_list}); "
                               f"COMP_CWORD={len(words)}; _botkit; printf '%s\\n' \"${{COMPREPLY[@]}}\""],
                              capture_output=True, timeout=30)
        return done.stdout.decode().split()

    assert complete("ses") == ["sessions"]
    assert complete("sessions", "") == ["list", "show", "delete", "export"]
    assert "--json" in complete("sessions", "list", "--")
    assert complete("feedback", "export", "--format", "") == ["csv", "jsonl"]
    assert complete("completion", "") == ["bash", "zsh", "fish"]
    fish = botkit("completion", "fish", cwd=tmp_path).stdout.decode()
    assert "complete -c botkit -n '__fish_use_subcommand' -a sessions" in fish
    zsh = botkit("completion", "zsh", cwd=tmp_path).stdout.decode()
    assert "bashcompinit" in zsh and "complete -o default -F _botkit botkit" in zsh


@pytest.mark.parametrize("backend", ["local", "vectara", "ragflow", "llamacloud", "openai"])
def test_init_writes_a_config_that_check_accepts(tmp_path, backend):
    done = botkit("init", "slack", "discord", "teams", "--backend", backend, "-o", "new.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    text = (tmp_path / "new.yaml").read_text()
    assert "#" in text and "bot_token" in text and f"type: {backend}" in text
    names = done.stdout.decode().split("set ")[1].split(" in the environment")[0].split(", ")
    checked = botkit("check", "-c", "new.yaml", cwd=tmp_path, env={name: "first-hour-value" for name in names})
    assert checked.returncode == 0, checked.stderr.decode()
    again = botkit("init", "-o", "new.yaml", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr.decode()


def test_check_online_signs_in_and_says_what_fails(tmp_path):
    port = free_port()
    write(tmp_path, f"""
        adapters:
          slack: {{bot_token: "xoxb-first-hour-0000", app_token: "xapp-1-x", api_url: "http://127.0.0.1:{port}/api/"}}
        backends: {{kb: {{type: local}}}}
        log: {{level: ERROR}}
        """)
    done = botkit("check", "--online", "-c", "my.yaml", cwd=tmp_path)
    out = done.stdout.decode()
    assert done.returncode == 1
    assert "adapter slack: FAILED:" in out and "backend kb: " in out and "passages from" in out
    assert "xoxb-first-hour" not in out + done.stderr.decode()


async def test_check_online_signs_in_to_every_fake_and_names_refused_credentials(tmp_path, capsys):
    discord, teams = FakeDiscord(), await FakeBotFramework().start()
    async with discord, FakeOpenAI(api_key="sk-first-hour") as model, FakeRagflow(api_key="rag-first-hour") as rag, \
            FakeLlamaCloud(api_key="llx-first-hour") as llama, FakeVectara(api_key="zqt_x-first-hour") as vectara:
        chat = rag.add_chat()
        config = write_config({
            "adapters": {"discord": {"type": "discord", "token": "discord-first-hour", "api_url": discord.api_url,
                                     "gateway_url": discord.gateway_url},
                         "teams": teams.adapter_config()},
            "backends": {
                "llm": {"type": "openai", "base_url": model.url + "/v1", "model": "m", "api_key": "sk-first-hour"},
                "rag": {"type": "ragflow", "base_url": rag.url, "api_key": "rag-first-hour", "chat_id": chat},
                "llama": {"type": "llamacloud", "base_url": llama.url, "api_key": "llx-first-hour",
                          "index_ids": ["idx-1"]},
                "vec": {"type": "vectara", "base_url": vectara.url, "api_key": "zqt_x-first-hour",
                        "corpora": [{"corpus_key": "docs"}]}},
            "routes": [{"backend": "llm"}], "log": {"level": "ERROR"}}, tmp_path)
        try:
            assert await asyncio.to_thread(main, ["check", "--online", "-c", str(config)]) == 0
            out = capsys.readouterr().out
            assert "adapter discord: signed in as botkit" in out and "adapter teams: app " in out
            assert "backend llm: signed in; it serves model 'm'" in out
            assert all(f"backend {name}: signed in" in out for name in ("rag", "llama", "vec")), out
            config.write_text(config.read_text().replace("-first-hour", "-wrong-key"))
            discord.fail("GET", "^/users/@me$", status=401)
            assert await asyncio.to_thread(main, ["check", "--online", "-c", str(config)]) == 1
        finally:
            await teams.close()
    out = capsys.readouterr().out
    assert "adapter discord: FAILED: Discord refused the token (HTTP 401)" in out
    for name in ("llm", "llama", "vec"):  # the operator is told the key was refused, not "unreachable"
        assert f"backend {name}: FAILED: the credentials were refused (HTTP 401)" in out, out
    assert "backend rag: FAILED: RAGFlow refused botkit's credentials" in out  # said in its envelope, HTTP 200
    assert "wrong-key" not in out


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path):
    write(tmp_path, FAKE + "backends: {b: {type: fake}}\n")
    read, written = os.pipe()
    os.close(read)  # `botkit plugins --json | head -0`: nobody reads what it prints
    try:
        done = subprocess.run([sys.executable, "-m", "botkit.cli", "plugins", "--json", "-c", "my.yaml"],
                              cwd=tmp_path, stdout=written, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(written)
    assert (done.returncode, done.stderr) == (141, b"")
