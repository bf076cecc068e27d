"""The `avatar` CLI end to end against the fake API (no server, no network)."""

import argparse
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatar_client import AvatarClient, cli
from avatar_client.dev import DevOptions
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
CLIENT_COMMANDS = ("generate", "status", "result", "cancel", "wait", "download", "list")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Run:
    """One CLI invocation with captured streams and what the client was built from."""

    def __init__(
        self,
        api: FakeApi,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        stderr: io.StringIO | None = None,
    ) -> None:
        self.stdout = io.StringIO()
        self.stderr = stderr or io.StringIO()
        self.client_args: tuple[str | None, str | None, Mapping[str, str]] | None = None
        self.now = 0.0

        def make_client(
            url: str | None, key: str | None, environ: Mapping[str, str]
        ) -> AvatarClient:
            self.client_args = (url, key, environ)
            return AvatarClient(
                url,
                key,
                http=httpx.Client(transport=httpx.MockTransport(api)),
                env=environ,
                sleep=self.sleep,
                clock=lambda: self.now,
            )

        self.code = cli.run(
            argv,
            env={"AVATAR_API_KEY": API_KEY, "AVATAR_URL": BASE_URL} if env is None else env,
            make_client=make_client,
            stdout=self.stdout,
            stderr=self.stderr,
        )

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    @property
    def json(self) -> Any:
        return json.loads(self.stdout.getvalue())


def generate_argv(tmp_path: Path, *extra: str) -> list[str]:
    image, audio = write_media(tmp_path)
    out = tmp_path / "out.mp4"
    return ["generate", str(image), str(audio), "--prompt", "hello", "-o", str(out), *extra]


def interrupt(_: httpx.Request) -> httpx.Response:
    raise KeyboardInterrupt


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
    err = run.stderr.getvalue().splitlines()
    assert err == [
        f"job {JOB_ID} submitted",
        "queued 0%, 3 ahead in queue",
        "generating 55%, eta 1m15s",
        "done 100%",
        "note: made by the preview engine, not by InfiniteTalk",
    ]
    generate = next(r for r in api.requests if r.url.path == "/generate")
    assert b'name="seed"\r\n\r\n3' in generate.content
    assert b'name="quality"\r\n\r\nfast' in generate.content
    assert b'name="resolution"\r\n\r\n480p' in generate.content


def test_generate_without_output_writes_job_id_mp4_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = generate_argv(tmp_path)[:-2]
    monkeypatch.chdir(tmp_path)
    run = Run(FakeApi(), argv)
    assert run.code == 0, run.stderr.getvalue()
    assert (tmp_path / f"{JOB_ID}.mp4").read_bytes() == VIDEO


def test_generate_json_prints_only_the_completed_job_and_its_file(tmp_path: Path) -> None:
    run = Run(FakeApi(), generate_argv(tmp_path, "--json"))
    assert run.code == 0
    body = run.json
    assert body["job_id"] == JOB_ID and body["status"] == "completed"
    assert body["output"] == str(tmp_path / "out.mp4")
    assert run.stderr.getvalue() == ""  # no progress on a stream that is not a terminal


def test_generate_json_on_a_terminal_draws_progress_on_stderr(tmp_path: Path) -> None:
    run = Run(FakeApi(), generate_argv(tmp_path, "--json"), stderr=Tty())
    assert run.code == 0
    assert run.stderr.getvalue().startswith("\rdone        100% [###")
    assert run.json["output"] == str(tmp_path / "out.mp4")


def test_generate_no_wait_prints_the_id_or_the_job(tmp_path: Path) -> None:
    api = FakeApi([job(status="pending", queue_position=0)])
    run = Run(api, generate_argv(tmp_path, "--no-wait"))
    assert (run.code, run.stdout.getvalue()) == (0, f"{JOB_ID}\n")
    assert not (tmp_path / "out.mp4").exists()
    assert all(not r.url.path.startswith("/result") for r in api.requests)
    run = Run(api, generate_argv(tmp_path, "--no-wait", "--json"))
    assert run.code == 0
    assert (run.json["job_id"], run.json["status"]) == (JOB_ID, "pending")


def test_generate_passes_urls_on_to_the_client(tmp_path: Path) -> None:
    api = FakeApi()
    _, audio = write_media(tmp_path)
    api.overrides["/media/"] = lambda _: httpx.Response(
        200, content=b"\x89PNG\r\n\x1a\n" + b"i" * 99
    )
    argv = ["generate", "http://api.test/media/p.png", str(audio), "--prompt", "p"]
    run = Run(api, [*argv, "-o", str(tmp_path / "o.mp4")])
    assert run.code == 0, run.stderr.getvalue()
    assert "/media/p.png" in [r.url.path for r in api.requests]


def test_generate_failed_job_exits_1_with_code_and_message(tmp_path: Path) -> None:
    failed = job(status="failed", error={"code": "GENERATION_FAILED", "message": "engine crashed"})
    run = Run(FakeApi([failed]), generate_argv(tmp_path))
    assert run.code == 1
    assert run.stderr.getvalue().endswith("error: GENERATION_FAILED: engine crashed\n")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("status", ["cancelled", "expired"])
def test_generate_cancelled_or_expired_exits_1(tmp_path: Path, status: str) -> None:
    run = Run(FakeApi([job(status=status)]), generate_argv(tmp_path, "--json"))
    assert run.code == 1
    assert f"error: job {JOB_ID} ended {status}" in run.stderr.getvalue()
    assert run.json["status"] == status


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
    assert run.stderr.getvalue().startswith(f"error: cannot reach {BASE_URL}/")


def test_ctrl_c_while_waiting_says_how_to_resume_and_exits_130(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/status/"] = interrupt
    run = Run(api, generate_argv(tmp_path))
    assert run.code == 130
    err = run.stderr.getvalue()
    assert f"job {JOB_ID} keeps running: resume with `avatar wait {JOB_ID}`" in err
    assert f"`avatar download {JOB_ID}`" in err


def test_ctrl_c_during_upload_exits_130(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/generate"] = interrupt
    run = Run(api, generate_argv(tmp_path))
    assert (run.code, run.stderr.getvalue()) == (130, "interrupted\n")


def test_status_prints_a_line_or_json() -> None:
    api = FakeApi([job(status="processing", progress=5, stage="downloading", eta_seconds=30)])
    run = Run(api, ["status", JOB_ID])
    assert run.code == 0
    assert run.stdout.getvalue() == f"{JOB_ID}  processing  downloading 5%, eta 30s\n"
    run = Run(api, ["status", JOB_ID, "--json"])
    assert run.json["progress"] == 5


def test_status_of_a_failed_job_names_its_error() -> None:
    failed = job(status="failed", error={"code": "GENERATION_FAILED", "message": "oom"})
    run = Run(FakeApi([failed]), ["status", JOB_ID])
    assert run.code == 0
    assert run.stdout.getvalue().splitlines()[-1] == "error: GENERATION_FAILED: oom"


def test_result_prints_the_url_or_json() -> None:
    run = Run(FakeApi(), ["result", JOB_ID])
    assert run.code == 0
    url, facts = run.stdout.getvalue().splitlines()
    assert url.startswith("http://blobs.test/videos/job.mp4?sig=")
    assert facts.endswith(f"{len(VIDEO)} bytes, 4 s, 720x720")
    run = Run(FakeApi(), ["result", JOB_ID, "--json"])
    assert run.json["size_bytes"] == len(VIDEO)


def test_result_not_ready_exits_1() -> None:
    api = FakeApi()
    api.overrides["/result/"] = lambda _: envelope(404, "RESULT_NOT_READY", "job is processing")
    run = Run(api, ["result", JOB_ID])
    assert (run.code, run.stderr.getvalue()) == (1, "error: RESULT_NOT_READY: job is processing\n")


def test_cancel_deletes_the_job_and_shows_it() -> None:
    api = FakeApi()
    api.overrides[f"/jobs/{JOB_ID}"] = lambda request: (
        httpx.Response(200, json=job(status="cancelled"))
        if request.method == "DELETE"
        else envelope(405, "METHOD_NOT_ALLOWED", request.method)
    )
    run = Run(api, ["cancel", JOB_ID])
    assert run.code == 0, run.stderr.getvalue()
    assert run.stdout.getvalue() == f"{JOB_ID}  cancelled  cancelled 0%\n"
    assert Run(api, ["cancel", JOB_ID, "--json"]).json["status"] == "cancelled"


def test_cancel_of_a_finished_job_exits_1() -> None:
    api = FakeApi()
    api.overrides["/jobs/"] = lambda _: envelope(409, "CONFLICT", "job is already completed")
    run = Run(api, ["cancel", JOB_ID])
    assert (run.code, run.stderr.getvalue()) == (1, "error: CONFLICT: job is already completed\n")


def test_wait_exits_by_how_the_job_ended() -> None:
    api = FakeApi(
        [
            job(status="processing", progress=50, stage="generating"),
            job(status="completed", progress=100, stage="done"),
        ]
    )
    run = Run(api, ["wait", JOB_ID])
    assert run.code == 0
    assert run.stderr.getvalue().splitlines() == ["generating 50%", "done 100%"]
    assert run.stdout.getvalue() == f"{JOB_ID}  completed  done 100%\n"
    run = Run(FakeApi([job(status="cancelled")]), ["wait", JOB_ID])
    assert run.code == 1
    assert run.stderr.getvalue().endswith(f"error: job {JOB_ID} ended cancelled\n")


def test_wait_timeout_exits_1_and_says_the_job_keeps_running() -> None:
    api = FakeApi([job(status="processing", progress=10, stage="generating")])
    run = Run(api, ["wait", JOB_ID, "--timeout", "0.05"])
    assert run.code == 1
    err = run.stderr.getvalue()
    assert f"error: job {JOB_ID} still running after 0.05 s; resume with `avatar wait" in err


def test_download_writes_the_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sub" / "v.mp4"
    run = Run(FakeApi(), ["download", JOB_ID, "-o", str(out)])
    assert (run.code, run.stdout.getvalue()) == (0, f"{out}\n")
    assert out.read_bytes() == VIDEO
    monkeypatch.chdir(tmp_path)
    run = Run(FakeApi(), ["download", JOB_ID, "--json"])
    assert run.json["output"] == f"{JOB_ID}.mp4"
    assert run.json["size_bytes"] == len(VIDEO)
    assert (tmp_path / f"{JOB_ID}.mp4").read_bytes() == VIDEO


def list_api(pages: dict[str | None, dict[str, Any]]) -> FakeApi:
    api = FakeApi()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    api.overrides["/jobs"] = answer
    return api


def test_list_walks_every_page_up_to_the_limit() -> None:
    second = "7d0c1f5e-6a38-4c2b-9a51-3f0f2f0f5e12"
    third = "7d0c1f5e-6a38-4c2b-9a51-3f0f2f0f5e13"
    api = list_api(
        {
            None: {"jobs": [job(status="pending", queue_position=0)], "next_cursor": "c2"},
            "c2": {
                "jobs": [job(job_id=second, status="completed", stage="done", progress=100)],
                "next_cursor": "c3",
            },
            "c3": {"jobs": [job(job_id=third)], "next_cursor": None},
        }
    )
    run = Run(api, ["list", "--status", "pending,completed", "--limit", "2"])
    assert run.code == 0, run.stderr.getvalue()
    lines = run.stdout.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [[JOB_ID, "pending"], [second, "completed"]]
    assert lines[0].endswith("queued 0%, 0 ahead in queue")
    requested = [r.url.params.get("status") for r in api.requests if r.url.path == "/jobs"]
    assert requested and all(s == "pending,completed" for s in requested)
    run = Run(api, ["list", "--json"])
    assert [j["job_id"] for j in run.json] == [JOB_ID, second, third]


@pytest.mark.parametrize("argv", [["--status", "done"], ["--limit", "0"], ["--limit", "x"]])
def test_list_refuses_bad_filters(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["list", *argv])
    assert caught.value.code == 2
    assert "error: argument --" in capsys.readouterr().err


def test_url_and_key_are_passed_to_the_client_as_given() -> None:
    env = {"AVATAR_URL": BASE_URL, "AVATAR_API_KEY": API_KEY}
    run = Run(FakeApi(), ["status", JOB_ID, "--url", "http://x:1", "--api-key", "sk_cli"], env)
    assert run.client_args == ("http://x:1", "sk_cli", env)
    run = Run(FakeApi(), ["status", JOB_ID], env)
    assert run.client_args == (None, None, env)


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["generate", "only-one-arg"])
    assert caught.value.code == 2
    assert "required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        cli.main(["generate", "a", "b", "--prompt", "p", "--resolution", "1080p"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        cli.main(["generate", "a", "b", "--prompt", "p", "--quality", "turbo"])
    assert caught.value.code == 2
    assert "invalid choice: 'turbo'" in capsys.readouterr().err


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        cli.main([*argv, "--help"])
    assert caught.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_generate_help_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, "generate")
    assert "--quality {standard,fast}" in text
    assert "fast: a distilled LoRA at 4 steps" in text
    for default in (
        "(default: standard)",
        "(default: 720p)",
        "(default: JOB_ID.mp4 in the current directory)",
        "(default: a random one)",
        "(default: no limit)",
        "(default: $AVATAR_URL, else http://127.0.0.1:8787)",
        "(default: $AVATAR_API_KEY, else for a local URL the key `avatar dev` keeps in "
        ".avatar/dev-secrets.json)",
    ):
        assert default in text


@pytest.mark.parametrize("command", [*CLIENT_COMMANDS, "key", "dev"])
def test_every_option_with_a_value_shows_its_default_and_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = next(
        action
        for action in cli.build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ).choices[command]
    text = help_text(capsys, command)
    assert "example: avatar " in text or "example: export AVATAR_API_KEY=$(avatar key)" in text
    for action in parser._actions:
        if action.option_strings and action.nargs != 0 and action.dest != "prompt":
            shown = text.split(" options: ", 1)[1].split(action.option_strings[-1], 1)[1]
            assert "(default: " in shown.split(" --", 1)[0], action.dest


def test_key_prints_the_key_from_the_environment_or_the_dev_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = Run(FakeApi(), ["key"], {"AVATAR_API_KEY": "sk_from_env_0123456789"})
    assert (run.code, run.stdout.getvalue()) == (0, "sk_from_env_0123456789\n")
    secrets = tmp_path / ".avatar" / "dev-secrets.json"
    secrets.parent.mkdir()
    secrets.write_text(json.dumps({"API_KEYS": "sk_local_dev_0123456789"}))
    run = Run(FakeApi(), ["key"], {})
    assert (run.code, run.stdout.getvalue()) == (0, "sk_local_dev_0123456789\n")
    assert Run(FakeApi(), ["key", "--api-key", "sk_given"], {}).stdout.getvalue() == "sk_given\n"


def test_no_key_anywhere_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev file is only read for a local URL: a remote server never gets a local key."""
    monkeypatch.chdir(tmp_path)
    secrets = tmp_path / ".avatar" / "dev-secrets.json"
    secrets.parent.mkdir()
    secrets.write_text(json.dumps({"API_KEYS": "sk_local_dev_0123456789"}))
    for argv in (["key"], ["status", JOB_ID]):
        run = Run(FakeApi(), [*argv, "--url", "https://api.example.com"], {})
        assert run.code == 2
        assert run.stderr.getvalue().startswith("error: no API key: ")
        assert run.stdout.getvalue() == ""


def test_main_builds_the_client_from_the_process_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi([job(status="processing", progress=1, stage="downloading")])
    monkeypatch.setenv("AVATAR_URL", "http://env.test")
    monkeypatch.setenv("AVATAR_API_KEY", API_KEY)
    built: list[tuple[str | None, str | None]] = []

    def factory(url: str | None, key: str | None, **kwargs: Any) -> AvatarClient:
        built.append((url, key))
        assert kwargs["env"]["AVATAR_URL"] == "http://env.test"
        return AvatarClient(
            url, key, http=httpx.Client(transport=httpx.MockTransport(api)), env=kwargs["env"]
        )

    monkeypatch.setattr(cli, "AvatarClient", factory)
    assert cli.main(["status", JOB_ID, "--json"]) == 0
    assert built == [(None, None)]
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


def test_generate_passes_parallel(tmp_path: Path) -> None:
    api = FakeApi([job(status="completed", progress=100, stage="done", engine="preview")])
    run = Run(api, generate_argv(tmp_path, "--parallel", "auto"))
    assert run.code == 0, run.stderr.getvalue()
    generate = next(r for r in api.requests if r.url.path == "/generate")
    assert b'name="parallel"\r\n\r\nauto' in generate.content


def test_generate_dubs_a_video_and_sends_two_speakers(tmp_path: Path) -> None:
    clip, speech, second = tmp_path / "clip.mp4", tmp_path / "a.wav", tmp_path / "b.wav"
    clip.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(64))
    speech.write_bytes(b"RIFF" + bytes(60))
    second.write_bytes(b"RIFF" + bytes(60))
    out = str(tmp_path / "out.mp4")
    api = FakeApi()
    argv = ["generate", str(speech), "--video", str(clip), "--prompt", "Dub", "-o", out]
    assert Run(api, argv).code == 0
    dubbed = next(r for r in api.requests if r.url.path == "/generate").content
    assert b'name="video"; filename="clip.mp4"' in dubbed and b'name="image"' not in dubbed
    api = FakeApi()
    argv = [
        "generate",
        str(tmp_path / "clip.mp4"),  # any picture: the fake does not judge it
        str(speech),
        "--audio2",
        str(second),
        "--speaker-mode",
        "simultaneous",
        "--speaker-boxes",
        "0,0,10,10;10,0,20,10",
        "--prompt",
        "Talk",
        "-o",
        out,
    ]
    assert Run(api, argv).code == 0
    pair = next(r for r in api.requests if r.url.path == "/generate").content
    assert b'name="audio2"; filename="b.wav"' in pair
    assert b'name="speaker_mode"\r\n\r\nsimultaneous' in pair
    assert b'name="speaker_boxes"\r\n\r\n[[0, 0, 10, 10], [10, 0, 20, 10]]' in pair


@pytest.mark.parametrize(
    "extra",
    [
        ["--video", "{clip}"],  # IMAGE and AUDIO given as well
        ["--speaker-mode", "simultaneous"],  # without --audio2
    ],
)
def test_generate_refuses_inconsistent_inputs(tmp_path: Path, extra: list[str]) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    args = [part.format(clip=clip) for part in extra]
    argv = ["generate", str(clip), str(clip), *args, "--prompt", "x"]
    assert Run(FakeApi(), argv).code == 2


@pytest.mark.parametrize("boxes", ["1,2,3", "0,0,1,1", "a,b,c,d;1,2,3,4"])
def test_speaker_boxes_are_two_boxes_of_four_numbers(boxes: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli._boxes(boxes)
    assert cli._boxes("0,0,10,10;10,0,20,10") == [[0, 0, 10, 10], [10, 0, 20, 10]]
