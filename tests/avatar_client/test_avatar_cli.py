"""The `avatar` CLI end to end against the fake API (no server, no network)."""

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatar_client import cli
from avatar_client.client import AvatarClient
from avatar_client.dev import DevOptions
from contracts import JobView
from tests.avatar_client.avatar_fakes import (
    API_KEY,
    BASE_URL,
    JOB_ID,
    VIDEO,
    FakeApi,
    envelope,
    job,
    write_media,
)

ANY_HOST = "0.0.0.0"  # noqa: S104 - a value under test, nothing binds it


class Run:
    """One CLI invocation with captured streams and the URL/key the client was built with."""

    def __init__(self, api: FakeApi, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.client_args: tuple[str, str] | None = None

        def make_client(url: str, key: str) -> AvatarClient:
            self.client_args = (url, key)
            return AvatarClient(
                url,
                key,
                http=httpx.Client(transport=httpx.MockTransport(api)),
                sleep=lambda _: None,
            )

        self.code = cli.run(
            argv,
            env={"AVATAR_API_KEY": API_KEY, "AVATAR_URL": BASE_URL} if env is None else env,
            make_client=make_client,
            stdout=self.stdout,
            stderr=self.stderr,
        )


def generate_argv(tmp_path: Path, *extra: str) -> list[str]:
    image, audio = write_media(tmp_path)
    out = tmp_path / "out.mp4"
    return ["generate", str(image), str(audio), "--prompt", "hello", "-o", str(out), *extra]


def test_generate_success_downloads_and_prints_path_and_job(tmp_path: Path) -> None:
    api = FakeApi(
        [
            job(status="pending", queue_position=3),
            job(status="processing", progress=55.5, stage="generating", eta_seconds=75),
            job(status="completed", progress=100, stage="done", engine="preview"),
        ]
    )
    run = Run(
        api, generate_argv(tmp_path, "--resolution", "480p", "--seed", "3", "--quality", "fast")
    )
    assert run.code == 0, run.stderr.getvalue()
    out = tmp_path / "out.mp4"
    assert out.read_bytes() == VIDEO
    assert run.stdout.getvalue().splitlines() == [str(out), f"job_id: {JOB_ID}"]
    err = run.stderr.getvalue()
    assert f"job {JOB_ID} submitted" in err
    assert "3 ahead in queue" in err
    assert "eta 1m15s" in err
    assert "preview engine" in err
    assert api.paths()[0] == "/generate"
    assert b'name="seed"\r\n\r\n3' in api.requests[0].content
    assert b'name="quality"\r\n\r\nfast' in api.requests[0].content
    assert api.paths()[-2:] == [f"/result/{JOB_ID}", "/videos/job.mp4"]


def test_generate_failed_job_exits_1_with_code_and_message(tmp_path: Path) -> None:
    failed = job(status="failed", error={"code": "GENERATION_FAILED", "message": "engine crashed"})
    run = Run(FakeApi([failed]), generate_argv(tmp_path))
    assert run.code == 1
    assert run.stderr.getvalue().endswith("error: GENERATION_FAILED: engine crashed\n")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("status", ["cancelled", "expired"])
def test_generate_cancelled_or_expired_exits_1(tmp_path: Path, status: str) -> None:
    run = Run(FakeApi([job(status=status)]), generate_argv(tmp_path))
    assert run.code == 1
    assert f"error: job {JOB_ID} ended {status}" in run.stderr.getvalue()


def test_generate_api_error_exits_1(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/generate"] = lambda _: envelope(
        400, "INVALID_INPUT", "prompt must be 1-2000 characters"
    )
    run = Run(api, generate_argv(tmp_path))
    assert run.code == 1
    assert run.stderr.getvalue() == "error: INVALID_INPUT: prompt must be 1-2000 characters\n"


def test_generate_missing_file_is_usage_error(tmp_path: Path) -> None:
    api = FakeApi()
    argv = ["generate", str(tmp_path / "nope.png"), str(tmp_path / "a.wav"), "--prompt", "x"]
    run = Run(api, [*argv, "-o", str(tmp_path / "o.mp4")])
    assert run.code == 2
    assert "error: image file not found" in run.stderr.getvalue()
    assert api.requests == []


def test_unreachable_server_exits_1() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = FakeApi()
    api.overrides["/"] = refuse
    run = Run(api, ["status", JOB_ID])
    assert run.code == 1
    assert run.stderr.getvalue().startswith(f"error: cannot reach {BASE_URL}/status/")


def test_ctrl_c_while_waiting_keeps_job_and_exits_130(tmp_path: Path) -> None:
    api = FakeApi()

    def interrupt(_: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    api.overrides["/status/"] = interrupt
    run = Run(api, generate_argv(tmp_path))
    assert run.code == 130
    assert f"avatar status {JOB_ID}" in run.stderr.getvalue()


def test_ctrl_c_during_upload_exits_130(tmp_path: Path) -> None:
    api = FakeApi()

    def interrupt(_: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    api.overrides["/generate"] = interrupt
    run = Run(api, generate_argv(tmp_path))
    assert (run.code, run.stderr.getvalue()) == (130, "interrupted\n")


def test_status_and_result_print_json() -> None:
    run = Run(
        FakeApi([job(status="processing", progress=5, stage="downloading")]), ["status", JOB_ID]
    )
    assert run.code == 0
    assert JobView.model_validate_json(run.stdout.getvalue()).progress == 5
    run = Run(FakeApi(), ["result", JOB_ID])
    assert run.code == 0
    assert json.loads(run.stdout.getvalue())["size_bytes"] == len(VIDEO)


def test_result_not_ready_exits_1() -> None:
    api = FakeApi()
    api.overrides["/result/"] = lambda _: envelope(404, "RESULT_NOT_READY", "job is processing")
    run = Run(api, ["result", JOB_ID])
    assert (run.code, run.stderr.getvalue()) == (1, "error: RESULT_NOT_READY: job is processing\n")


@pytest.mark.parametrize(
    ("env", "argv_extra", "expected"),
    [
        ({}, ["--url", "http://x:1", "--api-key", "sk_cli"], ("http://x:1", "sk_cli")),
        ({"AVATAR_API_KEY": "sk_a", "API_KEYS": "sk_b"}, [], (cli.DEFAULT_URL, "sk_a")),
        (
            {"API_KEYS": " sk_first , sk_second", "API_KEY": "sk_c"},
            [],
            (cli.DEFAULT_URL, "sk_first"),
        ),
        ({"API_KEYS": " , ", "API_KEY": "sk_single"}, [], (cli.DEFAULT_URL, "sk_single")),
        ({"AVATAR_URL": "http://remote", "API_KEY": "k"}, [], ("http://remote", "k")),
    ],
)
def test_url_and_key_resolution(
    env: dict[str, str], argv_extra: list[str], expected: tuple[str, str]
) -> None:
    run = Run(FakeApi(), ["status", JOB_ID, *argv_extra], env=env)
    assert run.client_args == expected


def test_missing_api_key_is_usage_error() -> None:
    run = Run(FakeApi(), ["status", JOB_ID], env={})
    assert run.code == 2
    assert run.client_args is None
    message = run.stderr.getvalue()
    assert message.startswith("error: no API key")
    assert "AVATAR_API_KEY" in message


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["generate", "only-one-arg"])
    assert caught.value.code == 2
    assert "required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        cli.main(["generate", "a", "b", "--prompt", "p", "-o", "o", "--resolution", "1080p"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        cli.main(["generate", "a", "b", "--prompt", "p", "-o", "o", "--quality", "turbo"])
    assert caught.value.code == 2
    assert "invalid choice: 'turbo'" in capsys.readouterr().err


def test_generate_help_shows_the_quality_and_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--quality {standard,fast}" in text
    assert "fast: a distilled LoRA at 4 steps" in text and "(default: standard)" in text


def test_main_uses_process_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi([job(status="processing", progress=1, stage="downloading")])
    monkeypatch.setenv("AVATAR_URL", "http://env.test")
    monkeypatch.setenv("AVATAR_API_KEY", API_KEY)

    def factory(url: str, key: str) -> AvatarClient:
        assert (url, key) == ("http://env.test", API_KEY)
        return AvatarClient(url, key, http=httpx.Client(transport=httpx.MockTransport(api)))

    monkeypatch.setattr(cli, "AvatarClient", factory)
    assert cli.main(["status", JOB_ID]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "processing"


def test_dev_subcommand_builds_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[DevOptions, dict[str, Any]]] = []

    def fake_run_dev(options: DevOptions, **kwargs: Any) -> int:
        calls.append((options, kwargs))
        return 7

    monkeypatch.setattr("avatar_client.dev.run_dev", fake_run_dev)
    monkeypatch.chdir(tmp_path)
    argv = ["dev", "--host", ANY_HOST, "--port", "9000", "--data-dir", "d", "--reload"]
    run = Run(FakeApi(), argv, env={"ENGINE": "infinitetalk"})
    assert run.code == 7
    options, kwargs = calls[0]
    # The engine is left open: `run_dev` takes it from ENGINE in the environment or `.env`.
    assert options == DevOptions(ANY_HOST, 9000, Path("d"), engine=None, reload=True)
    assert kwargs["cwd"] == tmp_path
    assert kwargs["env"] == {"ENGINE": "infinitetalk"}

    Run(FakeApi(), ["dev", "--engine", "infinitetalk"], env={})
    assert calls[1][0] == DevOptions(engine="infinitetalk")
    Run(FakeApi(), ["dev"], env={})
    assert calls[2][0] == DevOptions()


def test_describe_wait_formats_short_etas() -> None:
    view = JobView.model_validate(job(status="processing", eta_seconds=9.6, queue_position=4))
    assert cli.describe_wait(view) == "eta 10s"
    assert cli.describe_wait(JobView.model_validate(job())) == ""


def test_generate_creates_the_output_directory(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    out = tmp_path / "videos" / "new" / "out.mp4"
    run = Run(FakeApi(), ["generate", str(image), str(audio), "--prompt", "p", "-o", str(out)])
    assert run.code == 0
    assert out.read_bytes() == VIDEO


def test_generate_refuses_an_impossible_output_before_uploading(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    (tmp_path / "file").write_text("")
    api = FakeApi()
    argv = ["generate", str(image), str(audio), "--prompt", "p", "-o", str(tmp_path / "file/o.mp4")]
    run = Run(api, argv)
    assert run.code == 2
    assert "cannot create the output directory" in run.stderr.getvalue()
    assert api.requests == []


def test_generate_reports_a_failed_write(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    (tmp_path / "taken").mkdir()
    argv = ["generate", str(image), str(audio), "--prompt", "p", "-o", str(tmp_path / "taken")]
    run = Run(FakeApi(), argv)
    assert run.code == 1
    assert run.stderr.getvalue().splitlines()[-1].startswith("error: [Errno")
