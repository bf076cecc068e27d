"""`make bench`: the edge's hot paths against a FastAPI baseline and bare Litestar.

One run starts three servers as processes, each under uvicorn: the local edge exactly as
`avatar-edge serve` runs it (SQLite, a blob directory, JSON access logs at INFO), the
in-memory FastAPI app of the same API shape (`bench.baseline_fastapi`) and a bare Litestar
handler (`bench.bare_litestar`). It measures, round by round so that a busy machine slows
every server alike: status reads per second, the p50 of small multipart submits, and one
10 MiB image + 50 MiB audio upload (time, and growth of the server's peak RSS). It prints
the ratios and writes a JSON summary to `.avatar/bench/`.

    .venv/bin/python -m bench.http_paths [--rounds 3] [--seconds 4] [--edge-root DIR]

`--edge-root DIR` (repeatable) also measures the edge of another checkout, say
`git archive <commit> | tar -x -C DIR` of the commit before a change, in the same run.
"""

import argparse
import os
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from bench.load import (
    ReadLoad,
    padded_png,
    silent_wav,
    status_reads,
    submit_p50_ms,
    upload_seconds,
)
from bench.stack import API_KEY, ROOT, free_port, memory_kib, start_edge, start_server, stop
from contracts.media import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES

EDGE, FASTAPI, BARE = "edge", "fastapi", "bare-litestar"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


class Measures(BaseModel):
    """One server's medians over the rounds; None where the server has no such route."""

    status_rps: list[float] = []
    status_reads_per_cpu_second: list[float] = []
    submit_p50_ms: list[float] = []
    upload_seconds: list[float] = []
    upload_rss_growth_mib: float | None = None

    @property
    def status(self) -> float | None:
        return statistics.median(self.status_rps) if self.status_rps else None

    @property
    def status_per_cpu(self) -> float | None:
        return (
            statistics.median(self.status_reads_per_cpu_second)
            if self.status_reads_per_cpu_second
            else None
        )

    @property
    def submit(self) -> float | None:
        return statistics.median(self.submit_p50_ms) if self.submit_p50_ms else None

    @property
    def upload(self) -> float | None:
        return statistics.median(self.upload_seconds) if self.upload_seconds else None


class Goal(BaseModel):
    measure: str
    value: float
    limit: float
    at_least: bool
    met: bool


class Summary(BaseModel):
    started_at: datetime
    rounds: int
    load: dict[str, float]
    servers: dict[str, Measures]
    ratios: dict[str, float]
    goals: list[Goal]


def ratios(servers: dict[str, Measures]) -> dict[str, float]:
    """Every edge-like server against the FastAPI baseline and, for status, bare Litestar.

    Each ratio is ours over theirs in the measure's unit: for status reads (per second of
    wall time, and per second of the server's CPU) higher is better, for times lower."""
    found: dict[str, float] = {}
    base, bare = servers.get(FASTAPI), servers.get(BARE)
    for name, ours in servers.items():
        if name in (FASTAPI, BARE):
            continue
        pairs = [
            ("status", ours.status, base and base.status, FASTAPI),
            ("status", ours.status, bare and bare.status, BARE),
            ("status_per_cpu", ours.status_per_cpu, base and base.status_per_cpu, FASTAPI),
            ("status_per_cpu", ours.status_per_cpu, bare and bare.status_per_cpu, BARE),
            ("submit_p50", ours.submit, base and base.submit, FASTAPI),
            ("upload", ours.upload, base and base.upload, FASTAPI),
        ]
        for measure, mine, theirs, against in pairs:
            if mine is not None and theirs:
                found[f"{name}/{against} {measure}"] = mine / theirs
    return found


def goals(servers: dict[str, Measures], found: dict[str, float]) -> list[Goal]:
    """The targets of issue 10 for the edge; a goal whose measure is missing is not listed."""
    wanted = [
        (f"{EDGE}/{FASTAPI} status", found.get(f"{EDGE}/{FASTAPI} status"), 1.0, True),
        (f"{EDGE}/{BARE} status", found.get(f"{EDGE}/{BARE} status"), 0.6, True),
        (f"{EDGE}/{FASTAPI} submit_p50", found.get(f"{EDGE}/{FASTAPI} submit_p50"), 1.0, False),
        (f"{EDGE}/{FASTAPI} upload", found.get(f"{EDGE}/{FASTAPI} upload"), 1.5, False),
    ]
    edge = servers.get(EDGE)
    if edge is not None:
        wanted.append(("edge upload RSS growth MiB", edge.upload_rss_growth_mib, 8.0, False))
    return [
        Goal(
            measure=m,
            value=v,
            limit=limit,
            at_least=at_least,
            met=v >= limit if at_least else v <= limit,
        )
        for m, v, limit, at_least in wanted
        if v is not None
    ]


class Server(BaseModel):
    name: str
    pid: int
    url: str
    api: bool
    """Serves /generate (the edge and the baseline); bare Litestar only answers status."""


@contextmanager
def servers(tmp: Path, edge_roots: Sequence[Path]) -> Iterator[list[Server]]:
    """Every server of the run, started, and stopped at the end; logs go to `tmp`."""
    with ExitStack() as stack:
        started: list[Server] = []

        def launch(name: str, argv: list[str] | None, root: Path = ROOT) -> None:
            log = stack.enter_context((tmp / f"{name}.log").open("wb"))
            if argv is None:
                process, url, _ = start_edge(tmp / name, log_level="INFO", root=root, stderr=log)
            else:
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                process = start_server([*argv, "--port", str(port)], url, os.environ, stderr=log)
            stack.callback(stop, process)
            started.append(Server(name=name, pid=process.pid, url=url, api=name != BARE))

        launch(EDGE, None)
        for root in edge_roots:
            launch(f"edge@{root.name}", None, root)
        launch(FASTAPI, ["bench.baseline_fastapi"])
        launch(BARE, ["bench.bare_litestar"])
        yield started


def run(rounds: int, load: ReadLoad, submits: int, edge_roots: Sequence[Path] = ()) -> Summary:
    started_at = datetime.now(UTC)
    small_image = (ROOT / "examples" / "portrait.png").read_bytes()
    small_audio = (ROOT / "examples" / "speech.wav").read_bytes()
    with tempfile.TemporaryDirectory() as tmp_name, servers(Path(tmp_name), edge_roots) as live:
        tmp = Path(tmp_name)
        big_image = padded_png(small_image, MAX_IMAGE_BYTES)
        big_audio = silent_wav(tmp / "big.wav", MAX_AUDIO_BYTES)
        measures = {server.name: Measures() for server in live}
        status_url = {server.name: f"{server.url}/status/none" for server in live}
        peak_before: dict[str, int] = {}
        for round_number in range(rounds):
            for server in live:
                m = measures[server.name]
                if server.api:
                    p50, job_id = submit_p50_ms(
                        server.url, HEADERS, small_image, small_audio, count=submits
                    )
                    m.submit_p50_ms.append(p50)
                    status_url[server.name] = f"{server.url}/status/{job_id}"
                reads = status_reads(status_url[server.name], HEADERS, load, server.pid)
                m.status_rps.append(reads.per_second)
                m.status_reads_per_cpu_second.append(1000 / reads.server_cpu_ms)
                if server.api:
                    peak_before.setdefault(server.name, memory_kib(server.pid, "VmHWM"))
                    m.upload_seconds.append(
                        upload_seconds(server.url, HEADERS, big_image, big_audio)
                    )
                    growth = memory_kib(server.pid, "VmHWM") - peak_before[server.name]
                    if round_number == 0:
                        m.upload_rss_growth_mib = growth / 1024
        found = ratios(measures)
        return Summary(
            started_at=started_at,
            rounds=rounds,
            load=vars(load) | {"submits_per_round": submits},
            servers=measures,
            ratios=found,
            goals=goals(measures, found),
        )


def report(summary: Summary) -> str:
    def show(value: float | None, unit: str, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f} {unit}"

    columns = ("status reads", "reads/CPU s", "submit p50", "upload", "RSS +")
    lines = [f"{'server':<22}" + "".join(f"{c:>14}" for c in columns)]
    for name, m in summary.servers.items():
        cells = (
            show(m.status, "/s", 0),
            show(m.status_per_cpu, "", 0),
            show(m.submit, "ms"),
            show(m.upload, "s", 2),
            show(m.upload_rss_growth_mib, "MiB"),
        )
        lines.append(f"{name:<22}" + "".join(f"{c:>14}" for c in cells))
    lines.append("")
    lines += [f"{name:<44} x{value:.2f}" for name, value in summary.ratios.items()]
    lines.append("")
    for goal in summary.goals:
        sign = ">=" if goal.at_least else "<="
        verdict = "met" if goal.met else "MISSED"
        lines.append(f"goal {goal.measure} {sign} {goal.limit:g}: {goal.value:.2f} {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="status reads per round")
    parser.add_argument("--submits", type=int, default=40, help="submits per round")
    parser.add_argument("--processes", type=int, default=1, help="status reading processes")
    parser.add_argument("--connections", type=int, default=8, help="per reading process")
    parser.add_argument(
        "--edge-root",
        type=Path,
        action="append",
        default=[],
        help="also measure the edge of this checkout (repeatable)",
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / ".avatar" / "bench")
    args = parser.parse_args(argv)
    load = ReadLoad(args.processes, args.connections, seconds=args.seconds)
    summary = run(args.rounds, load, args.submits, args.edge_root)
    print(report(summary))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"http-{summary.started_at:%Y%m%dT%H%M%SZ}.json"
    out.write_text(summary.model_dump_json(indent=2))
    print(f"\nsummary: {out}")


if __name__ == "__main__":
    main()
