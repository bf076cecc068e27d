"""bench/fanout.py end to end in a tiny configuration: a real edge and sleep-engine agents
as processes, one run per agent count, and the table it prints. Nothing here asserts a
speed-up: seconds of audio on a shared machine measure nothing."""

import subprocess
import sys

from bench.fanout import Run, table
from bench.stack import ROOT


def test_the_table_has_a_row_per_agent_count_against_the_first() -> None:
    runs = [Run(1, 100.0, 0, 0.0, 0.0), Run(4, 27.0, 4, 1.0, 2.0)]
    header, one, four, goals = table(runs).splitlines()
    assert header.split() == [
        "agents",
        "segments",
        "wall",
        "s",
        "speed-up",
        "efficiency",
        "planning",
        "s",
        "stitching",
        "s",
        "plan+stitch",
    ]
    assert one.split() == ["1", "0", "100.0", "1.00x", "1.00", "0.00", "0.00", "0.0%"]
    assert four.split() == ["4", "4", "27.0", "3.70x", "0.93", "1.00", "2.00", "3.0%"]
    assert goals.startswith("goals: efficiency >= 0.85")


def test_the_bench_runs_each_agent_count_and_prints_the_table() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.fanout",
            "--agents",
            "1,2",
            "--audio-seconds",
            "8",
            "--seconds-per-chunk",
            "0.05",
            "--warmup-seconds",
            "0.1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("8 s of audio, sleep engine at 0.05 s per chunk")
    rows = [line.split() for line in lines[2:4]]
    assert [row[0] for row in rows] == ["1", "2"]
    assert rows[0][1] == "0" and rows[0][3] == "1.00x"  # the baseline runs unsplit
    assert all(float(row[2]) > 0 and row[-1].endswith("%") for row in rows)
    assert lines[4].startswith("goals:")
