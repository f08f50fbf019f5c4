"""Bad configs exit 2 with file:line: key: message, and secrets stay secret."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from botkit.cli import main

FAKE = "plugins: [botkit.testing]\n"


def check(tmp_path, capsys, text: str) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(FAKE + textwrap.dedent(text))
    status = main(["check", "-c", str(path)])
    return status, capsys.readouterr().err


def test_missing_key(tmp_path, capsys):
    status, err = check(tmp_path, capsys, """
        adapters:
          rec: {type: recording}
        backends:
          b: {type: fake}
        routes:
          - {adapter: rec}
        """)
    assert status == 2
    assert "config.yaml:8: routes[0].backend: field required" in err


def test_wrong_type(tmp_path, capsys):
    status, err = check(tmp_path, capsys, """
        adapters:
          rec: {type: recording}
        backends:
          b:
            type: fake
            chunks: many
        """)
    assert status == 2
    assert "config.yaml:8: backends.b.chunks: Input should be a valid integer" in err
    assert "many" not in err  # values are never quoted back


def test_unknown_key_suggests_the_closest(tmp_path, capsys):
    status, err = check(tmp_path, capsys, """
        adapters:
          rec: {type: recording}
        backends:
          b: {type: fake, ansewr: hi}
        dispatch:
          max_inflight: 3
        """)
    assert status == 2
    assert "config.yaml:6: backends.b: unknown key 'ansewr' (did you mean 'answer'?)" in err
    assert "config.yaml:8: dispatch: unknown key 'max_inflight' (did you mean 'max_in_flight'?)" in err


def test_unset_env_var(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BOTKIT_TEST_UNSET", raising=False)
    monkeypatch.setenv("BOTKIT_TEST_ANSWER", "from env")
    status, err = check(tmp_path, capsys, """
        adapters:
          rec: {type: recording}
        backends:
          b: {type: fake, answer: "${BOTKIT_TEST_UNSET}"}
        """)
    assert status == 2
    assert "config.yaml:6: backends.b.answer: environment variable BOTKIT_TEST_UNSET is not set" in err
    status, err = check(tmp_path, capsys, """
        adapters:
          rec: {type: recording, channel: "${BOTKIT_TEST_UNSET:-general}"}
        backends:
          b: {type: fake, answer: "${BOTKIT_TEST_ANSWER}"}
        """)
    assert status == 0, err


def test_unknown_component_type_and_bad_route(tmp_path, capsys):
    status, err = check(tmp_path, capsys, """
        adapters:
          rec: {type: recordin}
        backends:
          b: {type: fake}
        routes:
          - {backend: nope}
        """)
    assert status == 2
    assert "config.yaml:4: adapters.rec: unknown adapter type 'recordin' (did you mean 'recording'?)" in err
    assert "config.yaml:8: routes[0].backend: no backend named 'nope'" in err


def test_invalid_yaml_names_the_line(tmp_path, capsys):
    status, err = check(tmp_path, capsys, "adapters:\n  rec: {type: recording\nbackends: {}\n")
    assert status == 2 and "config.yaml:" in err and "invalid YAML" in err


def test_a_bad_config_exits_2_from_the_command_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("adapters: {console: {promt: x}}\nbackends: {docs: {type: local}}\n")
    proc = subprocess.run([sys.executable, "-m", "botkit.cli", "run", "-c", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "bad.yaml:1: adapters.console: unknown key 'promt' (did you mean 'prompt'?)" in proc.stderr


SECRET_PLUGIN = '''
import logging
from pydantic import SecretStr
from botkit import Backend, Done, TextDelta, hookimpl
from botkit.config import Section

log = logging.getLogger("leaky")

class LeakyConfig(Section):
    api_key: SecretStr

class LeakyBackend(Backend):
    async def stream(self, session, question):
        log.debug("config is %r", self.config)
        log.debug("sending headers %s", {"Authorization": "Bearer " + self.config.api_key.get_secret_value()})
        yield TextDelta("done")
        yield Done()

@hookimpl
def botkit_register_backends(register):
    register("leaky", LeakyBackend, LeakyConfig)
'''


def test_a_secret_never_reaches_the_log_even_at_debug(tmp_path, monkeypatch):
    (tmp_path / "leaky.py").write_text(SECRET_PLUGIN)
    (tmp_path / "config.yaml").write_text(textwrap.dedent("""
        plugins: [leaky.py]
        logging: {level: DEBUG, content: true}  # libraries' DEBUG lines (headers) are logged too
        store: {url: "sqlite:///s.db"}
        adapters: {console: {}}
        backends:
          b: {type: leaky, api_key: "${LEAKY_KEY}"}
        """))
    secret = "sk-very-secret-value-1234"
    env = {**__import__("os").environ, "LEAKY_KEY": secret}
    proc = subprocess.run([sys.executable, "-m", "botkit.cli", "run", "-c", "config.yaml"], input="hello\n",
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "done" in proc.stdout
    assert "DEBUG" in proc.stderr and "sending headers" in proc.stderr  # the lines were logged...
    assert secret not in proc.stderr + proc.stdout  # ...without the secret
    assert "SecretStr('**********')" in proc.stderr


def test_a_store_password_is_a_secret(tmp_path, capsys):
    from botkit.bot import load, secrets_of

    path = tmp_path / "config.yaml"
    path.write_text(FAKE + "store: {url: 'postgresql://bot:s3cr3t-pw@db.internal:5432/botkit'}\n"
                    "adapters: {rec: {type: recording}}\nbackends: {b: {type: fake}}\n")
    assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t-pw" not in out and "bot:***@db.internal" in out
    config, _ = load(path)
    assert "s3cr3t-pw" in secrets_of(config)  # so the log filter redacts it wherever it appears
    assert "s3cr3t-pw" not in repr(config.root)
