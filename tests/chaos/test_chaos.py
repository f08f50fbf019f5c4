"""bench/chaos.py, short: SIGKILL the real bot under load, fill its disk or stop its database;
nothing may be lost, stuck, erased, duplicated or answered out of order.

Crash mode restarts the bot on its SQLite store; replicas mode kills one of three bots
sharing PostgreSQL and leaves the others to take over (with a short recovery lease, so
that the takeover fits in the test's time). The tool runs as a subprocess, exactly as
it runs by hand, and hands its figures over as JSON.
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

CHAOS = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
FAILURES = ("lost", "stuck", "erased", "duplicated", "out_of_order")
#: the takeover of a dead replica's threads within a few seconds instead of the default ~25 s
FAST_RECOVERY = json.dumps({"recovery": {"lease_ttl": 2, "sweep_interval": 0.5}})

pytestmark = pytest.mark.chaos


def run_chaos(tmp_path: Path, *args: str) -> dict:
    """Run the tool; its figures (total and per run, with findings)."""
    figures = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(CHAOS), *args, "--seed", "7", "--settle", "30",
                           "--ack-timeout", "20", "--json", str(figures)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, 1) and figures.is_file(), f"chaos could not run:\n{done.stdout}\n{done.stderr}"
    return json.loads(figures.read_text())


def assert_nothing_failed(figures: dict) -> None:
    total = figures["total"]
    assert total["tried"] > 0 and total["acked"] > 0 and total["answered"] > 0, total
    findings = [f for run in figures["runs"] for f in run["findings"]]
    assert {name: total[name] for name in FAILURES} == dict.fromkeys(FAILURES, 0), "\n".join(findings[:30])


def test_a_killed_and_restarted_bot_loses_nothing(tmp_path: Path) -> None:
    assert_nothing_failed(run_chaos(tmp_path, "crash", "--runs", "2", "--threads", "10", "--questions", "3"))


def test_replicas_take_over_a_killed_replica(tmp_path: Path, tools) -> None:  # noqa: ANN001 - tests/conftest.py's Tools
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        tools.missing("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    figures = run_chaos(tmp_path, "replicas", "--replicas", "3", "--runs", "1", "--threads", "10",
                        "--questions", "3", "--bot-config-extra", FAST_RECOVERY)
    assert_nothing_failed(figures)


def test_a_full_disk_loses_nothing_and_the_bot_carries_on_without_a_restart(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    figures = run_chaos(tmp_path, "diskfull", "--runs", "1", "--threads", "10", "--questions", "3",
                        "--fault-seconds", "4", "--logs", str(logs))
    assert_nothing_failed(figures)
    assert figures["total"]["answered"] == figures["total"]["acked"] == 30
    log = (logs / "run-01" / "p0.log").read_text()
    # the fault was real, said once, and over by itself
    assert log.count("cannot write") == 1 and log.count("writes again") == 1, log
    assert "Traceback" not in log


def test_a_database_down_for_a_while_loses_nothing_and_the_bots_carry_on(tmp_path: Path, tools) -> None:  # noqa: ANN001 - Tools
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        tools.missing("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    logs = tmp_path / "logs"
    figures = run_chaos(tmp_path, "dbdown", "--replicas", "2", "--runs", "1", "--threads", "10", "--questions", "3",
                        "--fault-seconds", "3", "--logs", str(logs))
    assert_nothing_failed(figures)
    assert figures["total"]["answered"] == figures["total"]["acked"] == 30
    said = [log.read_text() for log in sorted((logs / "run-01").glob("*.log"))]
    faulted = [log for log in said if "the database cannot be reached" in log]
    assert faulted, said  # the outage was real
    assert all("the database can be reached again" in log for log in faulted)  # and over by itself

