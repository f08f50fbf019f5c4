"""`botkit run --allocator`: the process re-executes itself on jemalloc (memory a burst took
goes back to the system), by default wherever the library is installed, or refuses clearly
when asked for it and it cannot. Run as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from botkit import allocator
from botkit.cli import main

# a backend that answers with the allocator its process runs on
PLUGIN = '''
from botkit import Backend, Done, TextDelta, allocator, hookimpl
from botkit.config import Section


class WhichAllocator(Backend):
    async def stream(self, session, question):
        yield TextDelta(f"allocated by {allocator.in_use()}")
        yield Done()


@hookimpl
def botkit_register_backends(register):
    register("which", WhichAllocator, Section)
'''


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "which.py").write_text(PLUGIN)
    path = tmp_path / "my.yaml"
    path.write_text(f'plugins: ["{tmp_path / "which.py"}"]\nstore: {{url: "sqlite:///h.db"}}\n'
                    "backends: {b: {type: which}}\n")
    return path


def run(config: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("BOTKIT_CONFIG", "BOTKIT_ALLOCATOR", "PYTHONMALLOC", "LD_PRELOAD")}
    return subprocess.run([sys.executable, "-m", "botkit.cli", "run", "-c", str(config), *options],
                          cwd=config.parent, input=b"which allocator?\n", env=environment | (env or {}),
                          capture_output=True, timeout=60)


def test_run_re_executes_itself_on_jemalloc_where_installed_unless_told_otherwise(config, tools):
    if allocator.jemalloc_library() is None:
        tools.missing("libjemalloc2 is not installed")
    for options, env, expected in [((), {}, "jemalloc"),  # auto
                                   ((), {"PYTHONMALLOC": "malloc"}, "malloc"),  # chosen from outside: left alone
                                   ((), {"PYTHONMALLOC": "debug"}, "pymalloc"),
                                   (("--allocator", "jemalloc"), {}, "jemalloc"),
                                   ((), {"BOTKIT_ALLOCATOR": "jemalloc"}, "jemalloc"),
                                   (("--allocator", "pymalloc"), {}, "pymalloc"),
                                   ((), {"BOTKIT_ALLOCATOR": "pymalloc"}, "pymalloc"),
                                   # glibc's malloc set from outside: asked for pymalloc, it gets it
                                   (("--allocator", "pymalloc"), {"PYTHONMALLOC": "malloc"}, "pymalloc")]:
        done = run(config, *options, env=env)
        assert done.returncode == 0, done.stderr.decode()
        assert f"allocated by {expected}" in done.stdout.decode(), (options, env, done.stdout.decode())


def test_without_the_library_run_exits_2_and_says_what_to_install(config, monkeypatch, capsys):
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)
    assert main(["run", "--allocator", "jemalloc", "-c", str(config)]) == 2
    assert "jemalloc is not installed (Debian: apt-get install libjemalloc2)" in capsys.readouterr().err


def test_auto_without_the_library_or_after_a_preload_that_did_not_take_runs_as_started(monkeypatch):
    def refuse(argv, env):
        raise AssertionError("re-executed")

    monkeypatch.setattr(allocator, "_exec", refuse)
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)
    allocator.ensure("auto", ["-m", "botkit.cli", "run"])
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: "/usr/lib/libjemalloc.so.2")
    monkeypatch.setenv("BOTKIT_ALLOCATOR_REEXECUTED", "1")
    allocator.ensure("auto", ["-m", "botkit.cli", "run"])
    assert "BOTKIT_ALLOCATOR_REEXECUTED" not in os.environ  # not handed down to what the bot starts


def test_an_unknown_allocator_or_a_preload_that_did_not_take_is_refused_not_looped(config, tools):
    done = run(config, env={"BOTKIT_ALLOCATOR": "tcmalloc"})
    assert done.returncode == 2
    assert "unknown allocator 'tcmalloc' (one of auto, pymalloc, jemalloc)" in done.stderr.decode()
    if allocator.jemalloc_library() is None:
        tools.missing("libjemalloc2 is not installed")
    # as if this process were the re-executed one and the preload had not taken: an error,
    # not another exec
    done = run(config, "--allocator", "jemalloc", env={"BOTKIT_ALLOCATOR_REEXECUTED": "1"})
    assert done.returncode == 2
    assert "was preloaded but is not in use" in done.stderr.decode()


@pytest.mark.parametrize(("argv", "env", "asked"), [
    (["run"], None, "auto"),  # not asked: jemalloc where it is installed
    (["run"], "jemalloc", "jemalloc"),
    (["-c", "my.yaml", "-v", "--log-level", "info", "run", "--allocator=jemalloc"], None, "jemalloc"),
    (["run", "-c", "run.yaml", "--allocator", "pymalloc"], "jemalloc", "pymalloc"),
    (["-c", "run", "sessions", "list"], "jemalloc", None),
    (["ask", "run?"], "jemalloc", None),
    (["--version"], None, None),
])
def test_the_allocator_is_read_before_the_plugins_load_and_only_for_run(argv, env, asked, monkeypatch):
    from botkit.cli.main import allocator_asked

    monkeypatch.delenv("BOTKIT_ALLOCATOR", raising=False)
    if env:
        monkeypatch.setenv("BOTKIT_ALLOCATOR", env)
    assert allocator_asked(argv) == asked
