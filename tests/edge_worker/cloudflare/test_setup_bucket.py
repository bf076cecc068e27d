"""scripts/setup_bucket.py against the fake R2: rules read back as applied, reruns are no-ops."""

import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_worker.adapters.cloudflare.presign import R2Settings
from scripts import setup_bucket
from scripts.setup_bucket import cors_rule, lifecycle_rules, main, r2_client
from tests.edge_worker.cloudflare.fake_r2 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, FakeR2

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "setup_bucket.py"
ORIGINS = ["https://app.example.com", "http://localhost:5173"]


@pytest.fixture
def env(bucket: str) -> dict[str, str]:
    return {
        "R2_ACCOUNT_ID": "0123456789abcdef",
        "R2_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "R2_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "R2_BUCKET_NAME": bucket,
    }


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The S3 operations the tool sends, recorded on the real client it builds."""
    made: list[str] = []

    def recording_client(settings: R2Settings) -> Any:
        client = r2_client(settings)
        client.meta.events.register("before-call.s3.*", lambda model, **_: made.append(model.name))
        return client

    monkeypatch.setattr(setup_bucket, "r2_client", recording_client)
    yield made


def run(fake_r2: FakeR2, env: dict[str, str], *extra: str) -> int:
    origins = [arg for origin in ORIGINS for arg in ("--origin", origin)]
    return main([*origins, "--endpoint", fake_r2.endpoint, *extra], env)


def test_rules_read_back_as_applied(
    fake_r2: FakeR2, bucket: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(fake_r2, env, "--max-age", "600") == 0

    client = fake_r2.client()
    assert client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == lifecycle_rules()
    assert client.get_bucket_cors(Bucket=bucket)["CORSRules"] == [cors_rule(ORIGINS, 600)]
    assert lifecycle_rules() == [
        {
            "ID": "avatar-expire-inputs",
            "Filter": {"Prefix": "inputs/"},
            "Status": "Enabled",
            "Expiration": {"Days": 1},
        },
        {
            "ID": "avatar-expire-videos",
            "Filter": {"Prefix": "videos/"},
            "Status": "Enabled",
            "Expiration": {"Days": 1},
        },
    ]
    out = capsys.readouterr().out
    assert f"bucket {bucket} at {fake_r2.endpoint}" in out
    assert "add avatar-expire-inputs (inputs/ after 1 day)" in out
    assert "cors: set PUT/GET/HEAD from https://app.example.com, http://localhost:5173" in out


def test_second_run_changes_nothing(
    fake_r2: FakeR2,
    env: dict[str, str],
    calls: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(fake_r2, env) == 0
    assert {"PutBucketLifecycleConfiguration", "PutBucketCors"} <= set(calls)
    calls.clear()
    capsys.readouterr()

    assert run(fake_r2, env) == 0

    assert calls == ["GetBucketLifecycleConfiguration", "GetBucketCors"]
    out = capsys.readouterr().out
    assert "lifecycle: unchanged (rules: 2)" in out
    assert "cors: unchanged" in out


def test_other_lifecycle_rules_are_kept_and_ours_updated(
    fake_r2: FakeR2, bucket: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = {
        "ID": "Default Multipart Abort Rule",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    stale = {**lifecycle_rules()[0], "Expiration": {"Days": 30}}
    fake_r2.client().put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [foreign, stale]}
    )

    assert run(fake_r2, env) == 0

    rules = fake_r2.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules == [foreign, *lifecycle_rules()]
    out = capsys.readouterr().out
    assert "update avatar-expire-inputs" in out
    assert "add avatar-expire-videos" in out
    assert "other rules kept: 1" in out


def test_cors_is_replaced_when_origins_change_but_not_when_reordered(
    fake_r2: FakeR2,
    bucket: str,
    env: dict[str, str],
    calls: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(fake_r2, env) == 0
    calls.clear()

    reordered = ["--origin", ORIGINS[1], "--origin", ORIGINS[0], "--endpoint", fake_r2.endpoint]
    assert main(reordered, env) == 0
    assert "PutBucketCors" not in calls

    assert main(["--origin", "https://new.example.com", "--endpoint", fake_r2.endpoint], env) == 0
    assert "PutBucketCors" in calls
    assert fake_r2.client().get_bucket_cors(Bucket=bucket)["CORSRules"] == [
        cors_rule(["https://new.example.com"], 3600)
    ]
    assert "previous rules replaced: 1" in capsys.readouterr().out


def test_dry_run_writes_nothing(
    fake_r2: FakeR2,
    env: dict[str, str],
    calls: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(fake_r2, env, "--dry-run") == 0

    assert not [name for name in calls if name.startswith("Put")]
    out = capsys.readouterr().out
    assert "lifecycle: would add avatar-expire-inputs" in out
    assert "cors: would set PUT/GET/HEAD" in out


def test_browsers_from_listed_origins_may_upload(
    fake_r2: FakeR2, bucket: str, env: dict[str, str]
) -> None:
    assert run(fake_r2, env) == 0

    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{fake_r2.endpoint}/{bucket}/inputs/j/image.png",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
        )

    allowed = preflight("https://app.example.com")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "PUT" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-expose-headers"] == "ETag"
    assert preflight("https://elsewhere.example").status_code == 403


def test_missing_settings_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--origin", "*"], {"R2_ACCOUNT_ID": "a", "R2_BUCKET_NAME": "b"}) == 2
    assert capsys.readouterr().err == (
        "error: invalid R2 settings: R2_ACCESS_KEY_ID: missing; R2_SECRET_ACCESS_KEY: missing\n"
    )


def test_an_origin_is_required(env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([], env)
    assert exited.value.code == 2


def test_store_errors_are_reported(
    fake_r2: FakeR2, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env["R2_BUCKET_NAME"] = "no-such-bucket-here"
    assert run(fake_r2, env) == 1
    assert "NoSuchBucket" in capsys.readouterr().err


def test_default_client_targets_the_account_endpoint() -> None:
    client = r2_client(
        R2Settings(
            account_id="acct123", access_key_id="AK", secret_access_key="SK", bucket_name="b"
        )
    )
    assert client.meta.endpoint_url == "https://acct123.r2.cloudflarestorage.com"
    assert client.meta.region_name == "auto"
    assert client.meta.config.s3 == {"addressing_style": "path"}


def test_runs_as_a_script(
    fake_r2: FakeR2,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = [str(SCRIPT), "--origin", "*", "--endpoint", fake_r2.endpoint, "--dry-run"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exited.value.code == 0
    assert "would set PUT/GET/HEAD from *" in capsys.readouterr().out
