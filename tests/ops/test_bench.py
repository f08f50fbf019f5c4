"""bench/dispatch.py, as anyone runs it: it answers every turn and prints each figure the
performance issues are judged by (the figures themselves are measured, not asserted)."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from botkit import allocator
from botkit.testing import postgres_binaries

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dispatch.py"


def test_the_burst_benchmark_prints_its_figures_and_the_store_s_share():
    run = subprocess.run([sys.executable, str(BENCH), "--mode", "burst", "--chunks", "1", "--turns", "300",
                          "--threads", "30"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    figure = {name: float(value.replace(",", "")) for name, value in re.findall(
        r"^  (turns/s|floor turns/s|ratio to the floor|CPU us per turn)\s+([\d.,]+)", out, re.MULTILINE)}
    assert set(figure) == {"turns/s", "floor turns/s", "ratio to the floor", "CPU us per turn"}, out
    assert abs(figure["ratio to the floor"] - figure["turns/s"] / figure["floor turns/s"]) < 0.002  # (printed rounded)
    # the journal floor: the store's durable steps alone, every turn answered (it asserts so), and botkit's ratio to it
    journal = re.search(r"^  journal floor turns/s\s+([\d,]+)  \(the store's durable steps alone: ([\d.]+) of the floor\)\n"
                        r"  ratio to the journal floor\s+([\d.]+)$", out, re.MULTILINE)
    assert journal is not None, out
    journal_rate = float(journal[1].replace(",", ""))
    assert abs(float(journal[2]) - journal_rate / figure["floor turns/s"]) < 0.002
    assert abs(float(journal[3]) - figure["turns/s"] / journal_rate) < 0.002
    writes = re.search(r"store writes us per turn\s+([\d.,]+) in the store's process \(busy (\d+)% of the run\)", out)
    assert writes is not None, out
    writing, share = float(writes[1].replace(",", "")), int(writes[2])
    assert writing > 0 and 0 < share < 100  # every turn's journal rows and record were written
    # the store's process, apart (its CPU is counted in clock ticks: 300 turns may take less than one)
    assert re.search(r"^  CPU us per turn\s+[\d,]+  \(and [\d,]+ in the processes it started\)", out, re.MULTILINE), out
    assert "adapter calls per answer     1.00" in out  # a fast answer: one post, no placeholder


def test_on_postgresql_it_counts_the_statements_the_server_ran_per_turn(tools):
    if postgres_binaries() is None:
        tools.missing("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    run = subprocess.run([sys.executable, str(BENCH), "--postgres", "--no-floor", "--turns", "300", "--threads", "30"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    counted = re.search(r"^  database statements per turn ([\d.]+)  \(round trips, as the PostgreSQL server counted"
                        r" them: ([\d,]+) for 300 turns\)$", run.stdout, re.MULTILINE)
    assert counted is not None, run.stdout
    statements = int(counted[2].replace(",", ""))
    assert statements > 0  # at least the admissions' batches: the server's own count, read after the burst
    assert abs(float(counted[1]) - statements / 300) < 0.001


def test_an_allocator_that_is_not_installed_is_said_in_one_line(monkeypatch):
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--allocator", "jemalloc"])
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(BENCH), run_name="__main__")
    assert exited.value.code == "bench/dispatch.py: jemalloc is not installed (Debian: apt-get install libjemalloc2)"
