"""bench/http_paths.py and its servers: ratios, goals, the report, the load helpers and the
servers as processes. Nothing here asserts a speed."""

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.bare_litestar import STATUS
from bench.http_paths import BARE, EDGE, FASTAPI, Measures, Summary, goals, main, ratios, report
from bench.load import (
    BOUNDARY,
    ReadLoad,
    multipart_body,
    padded_png,
    silent_wav,
    status_reads,
)
from bench.stack import API_KEY, ROOT, cpu_seconds, free_port, start_server, stop
from contracts import JobView
from contracts.media import PNG, WAV, sniff, wav_truncation

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def measured(status: float, submit: float | None = None, upload: float | None = None) -> Measures:
    return Measures(
        status_rps=[status, status * 3, status / 3],
        status_reads_per_cpu_second=[status * 2],
        submit_p50_ms=[] if submit is None else [submit],
        upload_seconds=[] if upload is None else [upload],
    )


def test_ratios_are_ours_over_theirs_for_every_edge_and_skip_what_is_missing() -> None:
    servers = {
        EDGE: measured(800, submit=6, upload=0.3),
        "edge@before": measured(400, submit=12),
        FASTAPI: measured(1000, submit=3, upload=0.2),
        BARE: measured(2000),
    }
    found = ratios(servers)
    assert found == pytest.approx(
        {
            "edge/fastapi status": 0.8,
            "edge/bare-litestar status": 0.4,
            "edge/fastapi status_per_cpu": 0.8,
            "edge/bare-litestar status_per_cpu": 0.4,
            "edge/fastapi submit_p50": 2.0,
            "edge/fastapi upload": 1.5,
            "edge@before/fastapi status": 0.4,
            "edge@before/bare-litestar status": 0.2,
            "edge@before/fastapi status_per_cpu": 0.4,
            "edge@before/bare-litestar status_per_cpu": 0.2,
            "edge@before/fastapi submit_p50": 4.0,
        }
    )
    assert ratios({EDGE: measured(800)}) == {}


def test_goals_compare_each_measure_with_its_limit_in_its_direction() -> None:
    servers = {
        EDGE: measured(1200, submit=3, upload=0.3),
        FASTAPI: measured(1000, submit=3, upload=0.2),
        BARE: measured(2400),
    }
    servers[EDGE].upload_rss_growth_mib = 9.0
    verdicts = {g.measure: (round(g.value, 2), g.met) for g in goals(servers, ratios(servers))}
    assert verdicts == {
        "edge/fastapi status": (1.2, True),
        "edge/bare-litestar status": (0.5, False),
        "edge/fastapi submit_p50": (1.0, True),
        "edge/fastapi upload": (1.5, True),
        "edge upload RSS growth MiB": (9.0, False),
    }
    assert goals({}, {}) == []


def test_the_report_shows_every_server_ratio_and_goal() -> None:
    servers = {EDGE: measured(800, submit=6, upload=0.3), FASTAPI: measured(1000, 3, 0.2)}
    servers[EDGE].upload_rss_growth_mib = 4.5
    found = ratios(servers)
    summary = Summary(
        started_at=datetime(2026, 12, 1, tzinfo=UTC),
        rounds=1,
        load={},
        servers=servers,
        ratios=found,
        goals=goals(servers, found),
    )
    lines = report(summary).splitlines()
    assert lines[1].split()[:2] == ["edge", "800"] and "4.5 MiB" in lines[1]
    assert lines[2].split()[0] == "fastapi" and lines[2].split()[-1] == "-"
    assert "edge/fastapi submit_p50                      x2.00" in lines
    assert "goal edge/fastapi submit_p50 <= 1: 2.00 MISSED" in lines
    assert "goal edge upload RSS growth MiB <= 8: 4.50 met" in lines


def test_the_large_upload_files_are_what_the_edge_accepts(tmp_path: Path) -> None:
    png = (ROOT / "examples" / "portrait.png").read_bytes()
    image = padded_png(png, 100_000)
    assert len(image) == 100_000 and sniff(image[:64]) is PNG
    audio = silent_wav(tmp_path / "a.wav", 200_000)
    head = audio.read_bytes()[:64]
    assert audio.stat().st_size == 200_000 and sniff(head) is WAV
    assert wav_truncation(head, 200_000) is None
    body = b"".join(multipart_body(image, audio))
    assert body.startswith(f"--{BOUNDARY}\r\n".encode())
    assert body.endswith(f"\r\n--{BOUNDARY}--\r\n".encode())
    assert image in body and audio.read_bytes() in body


@pytest.fixture
def baseline_url() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(["bench.baseline_fastapi", "--port", str(port)], url, {})
    yield url
    stop(process)


def test_the_fastapi_baseline_has_the_edge_api_shape(baseline_url: str, tmp_path: Path) -> None:
    client = httpx.Client(base_url=baseline_url)
    image = (ROOT / "examples" / "portrait.png").read_bytes()
    audio = silent_wav(tmp_path / "a.wav", 1000)
    body = b"".join(multipart_body(image, audio))
    content_type = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    assert client.post("/generate", content=body, headers=content_type).status_code == 401
    created = client.post("/generate", content=body, headers={**HEADERS, **content_type})
    assert created.status_code == 200
    job = JobView.model_validate(created.json())
    assert job.status == "pending" and job.queue_position == 0
    status = client.get(f"/status/{job.job_id}", headers=HEADERS)
    assert status.json() == created.json()
    assert client.get("/status/nope", headers=HEADERS).status_code == 404
    bad = client.post(
        "/generate",
        files={"image": ("p.txt", b"not an image"), "audio": ("a.wav", audio.read_bytes())},
        data={"prompt": "x"},
        headers=HEADERS,
    )
    assert bad.status_code == 400
    not_multipart = client.post("/generate", content=b"{}", headers=HEADERS)
    assert not_multipart.status_code == 400


def test_the_bare_litestar_status_parses_as_a_job_view() -> None:
    assert JobView.model_validate(STATUS).status == "pending"


def test_a_server_starts_serves_reads_and_stops() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(["bench.bare_litestar", "--port", str(port)], url, {"PATH": ""})
    try:
        assert httpx.get(f"{url}/status/x").json() == STATUS
        assert cpu_seconds(process.pid) > 0
        reads = status_reads(f"{url}/status/x", {}, ReadLoad(1, 2, 0.1, 0.3), process.pid)
        assert reads.per_second > 0 and reads.server_cpu_ms > 0
    finally:
        stop(process)
    assert process.returncode is not None
    stop(process)  # stopping twice is harmless


def test_a_server_that_dies_at_start_up_is_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match=r"bench.bare_litestar did not start \(exit status 2\)"):
        start_server(["bench.bare_litestar"], url, {}, stderr=subprocess.DEVNULL)


def test_the_whole_bench_runs_once_and_writes_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--rounds", "1", "--seconds", "0.3", "--submits", "1", "--out-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    (summary_file,) = tmp_path.glob("http-*.json")
    summary = json.loads(summary_file.read_text())
    assert set(summary["servers"]) == {EDGE, FASTAPI, BARE}
    assert summary["servers"][EDGE]["upload_rss_growth_mib"] is not None
    assert "edge/fastapi status" in summary["ratios"]
    assert {g["measure"] for g in summary["goals"]} >= {"edge upload RSS growth MiB"}
    assert f"summary: {summary_file}" in printed
