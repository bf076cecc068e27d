"""Usage against a live local stack, after a preview agent ran a job: the tenant's own
report through the SDK, and every key's through `avatar-admin usage`, on the database and
through the admin API alike."""

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from avatar_client import AsyncAvatarClient, AvatarClient
from contracts import AdminUsageReport, UsageReport
from edge_worker import admin_cli
from tests.e2e.conftest import API_KEY, EXAMPLES, Stack, submit, terminal, wait_for
from tests.e2e.test_admin_cli import admin, admin_stack, printed_key  # noqa: F401 (fixture)
from tests.e2e.test_avatar_cli import avatar, ok

SPEECH = EXAMPLES / "speech.wav"


def tenant_report(stack: Stack, key: str) -> UsageReport:
    with AvatarClient(stack.url, key) as client:
        report = client.usage()

    async def fetch() -> UsageReport:
        async with AsyncAvatarClient(stack.url, key) as client:
            return await client.usage(report.first_day, report.last_day)

    assert asyncio.run(fetch()) == report
    return report


def test_a_finished_job_is_metered_for_its_tenant_and_across_keys(
    admin_stack: Stack,  # noqa: F811
    tmp_path: Path,
) -> None:
    tenant = admin(admin_stack, "keys", "create", "--name", "metered")
    key = printed_key(tenant)
    (key_id,) = [k["id"] for k in json.loads(admin(admin_stack, "keys", "list", "--json"))["keys"]]
    admin_stack.start_agent()
    with admin_stack.client() as client:
        client.headers["Authorization"] = f"Bearer {key}"
        done = wait_for(client, submit(client, SPEECH), terminal, timeout=180)
        assert done["status"] == "completed", admin_stack.logs()
        submit(client, SPEECH, Authorization=f"Bearer {API_KEY}")  # another owner's

    (bucket,) = tenant_report(admin_stack, key).buckets
    assert (bucket.jobs_created, bucket.jobs_completed, bucket.jobs_failed) == (1, 1, 0)
    assert bucket.audio_seconds > 0 and bucket.video_seconds > 0 and bucket.gpu_seconds > 0
    assert len(tenant_report(admin_stack, API_KEY).buckets) == 1
    shown = ok(avatar(admin_stack, tmp_path, "usage", "--json", key=key), admin_stack)
    assert UsageReport.model_validate_json(shown).buckets == [bucket]
    line = ok(avatar(admin_stack, tmp_path, "usage", key=key), admin_stack)
    assert f"{bucket.day.isoformat()}  standard  created 1  completed 1  failed 0" in line
    refused = avatar(admin_stack, tmp_path, "usage", "--to", "soon", key=key)
    assert refused.returncode != 0 and "INVALID_INPUT" in refused.stderr

    local = admin(admin_stack, "usage", "--format", "json", remote=False)
    remote = AdminUsageReport.model_validate_json(admin(admin_stack, "usage", "--format", "json"))
    assert AdminUsageReport.model_validate_json(local) == remote
    mine = [b for b in remote.buckets if b.key_id == key_id]
    assert [b.model_dump(exclude={"owner", "key_id", "key_name"}) for b in mine] == [
        bucket.model_dump()
    ]
    assert {b.key_name for b in remote.buckets} == {"metered", None}

    for remote_side in (True, False):
        rows = list(
            csv.DictReader(
                io.StringIO(admin(admin_stack, "usage", "--key", key_id, remote=remote_side))
            )
        )
        assert [(r["key_name"], r["jobs_completed"], r["quality"]) for r in rows] == [
            ("metered", "1", "standard")
        ]
        assert float(rows[0]["gpu_seconds"]) == bucket.gpu_seconds


def test_admin_usage_refusals_are_one_line(
    admin_stack: Stack,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"ADMIN_TOKEN": "e2e-admin-token-0123456789"}
    for where in (["--url", admin_stack.url], ["--data-dir", str(admin_stack.data_dir)]):
        assert admin_cli.main([*where, "usage", "--from", "2026-02-30"], env) == 1
        assert "INVALID_INPUT: from must be a date as YYYY-MM-DD" in capsys.readouterr().err
        assert admin_cli.main([*where, "usage", "--key", "key_missing"], env) == 1
        assert "NOT_FOUND" in capsys.readouterr().err
