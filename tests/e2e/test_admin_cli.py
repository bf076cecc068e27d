"""`avatar-admin` against a live local edge: on its database directly and through its
admin API, with the keys it makes used on the client API of the same edge."""

import io
import json
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from edge_worker import admin_cli
from tests.e2e.conftest import ROOT, Stack

ADMIN_TOKEN = "e2e-admin-token-0123456789"


@pytest.fixture
def admin_stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory(ADMIN_TOKEN=ADMIN_TOKEN)


def admin(stack: Stack, *argv: str, remote: bool = True) -> str:
    """Run `avatar-admin` in-process; its output, after checking it succeeded."""
    out = io.StringIO()
    where = ["--url", stack.url] if remote else ["--data-dir", str(stack.data_dir)]
    env = {"ADMIN_TOKEN": ADMIN_TOKEN, "API_KEY_PEPPER": stack.env["API_KEY_PEPPER"]}
    assert admin_cli.main([*where, *argv], env, out) == 0
    return out.getvalue()


def printed_key(output: str) -> str:
    return output.strip().splitlines()[-1].strip()


def jobs_status(stack: Stack, key: str) -> int:
    response = httpx.get(f"{stack.url}/jobs", headers={"Authorization": f"Bearer {key}"})
    return response.status_code


def listed(stack: Stack, remote: bool = True) -> list[dict]:
    keys: list[dict] = json.loads(admin(stack, "keys", "list", "--json", remote=remote))["keys"]
    return keys


def test_keys_made_on_the_database_and_through_the_api_are_one_set(admin_stack: Stack) -> None:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_worker.admin_cli",
            "--data-dir",
            str(admin_stack.data_dir),
            "keys",
            "create",
            "--name",
            "local tenant",
            "--max-active-jobs",
            "3",
            "--expires-days",
            "30",
        ],
        env=admin_stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    local_key = printed_key(made.stdout)
    assert local_key.startswith("sk_live_")
    assert jobs_status(admin_stack, local_key) == 200

    remote = admin(admin_stack, "keys", "create", "--name", "remote tenant")
    remote_key = printed_key(remote)
    assert jobs_status(admin_stack, remote_key) == 200

    for remote_side in (True, False):
        keys = listed(admin_stack, remote=remote_side)
        assert [key["name"] for key in keys] == ["local tenant", "remote tenant"]
        assert keys[0]["max_active_jobs"] == 3 and keys[0]["expires_at"] is not None
        assert all(key["last_used_at"] for key in keys)
        assert local_key not in json.dumps(keys) and remote_key not in json.dumps(keys)
    table = admin(admin_stack, "keys", "list")
    assert keys[0]["prefix"] in table and local_key not in table

    local_id, remote_id = (key["id"] for key in keys)
    rotated = printed_key(admin(admin_stack, "keys", "rotate", local_id))
    assert jobs_status(admin_stack, local_key) == 401
    assert jobs_status(admin_stack, rotated) == 200

    admin(admin_stack, "keys", "revoke", remote_id, remote=False)
    assert jobs_status(admin_stack, remote_key) == 401
    assert "revoked" in admin(admin_stack, "keys", "revoke", remote_id)
    assert admin(admin_stack, "pool").splitlines() == [
        "pool off: 0 pods at least, no maximum; 0 up, cost unknown (POOL_POD_HOURLY_USD); "
        "30 GPU-s per video-s",
        "last decision: none yet",
        "pods started 0, stopped 0 (0 without a heartbeat); "
        "RunPod errors: 0 rate limited, 0 server, 0 unreachable, 0 refused",
        "no pods",
    ]


def test_refusals_are_one_line_and_a_failing_status(
    admin_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--url", admin_stack.url, "keys"]
    assert admin_cli.main([*url, "list"], {"ADMIN_TOKEN": "wrong-admin-token-012345"}) == 1
    assert "UNAUTHORIZED" in capsys.readouterr().err
    assert admin_cli.main([*url, "rotate", "key_missing"], {"ADMIN_TOKEN": ADMIN_TOKEN}) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    local = ["--data-dir", str(admin_stack.data_dir), "keys"]
    assert admin_cli.main([*local, "revoke", "key_missing"], {"API_KEY_PEPPER": "p" * 16}) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    assert admin_cli.main([*local, "list"], {}) == 1
    assert "API_KEY_PEPPER is not set" in capsys.readouterr().err
    missing = ["--data-dir", str(admin_stack.data_dir / "nowhere"), "keys", "list"]
    assert admin_cli.main(missing, {"API_KEY_PEPPER": "p" * 16}) == 1
    assert "no local edge data" in capsys.readouterr().err
    bad = [*url, "create", "--name", "x", "--expires-days", "0"]
    assert admin_cli.main(bad, {"ADMIN_TOKEN": ADMIN_TOKEN}) == 1
    assert "expires_in_days" in capsys.readouterr().err


def test_without_an_admin_token_the_edge_has_no_admin_api(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert admin_cli.main(["--url", stack.url, "keys", "list"], {"ADMIN_TOKEN": ADMIN_TOKEN}) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    closed = admin_cli.main(["--url", "http://127.0.0.1:9", "keys", "list"], {"ADMIN_TOKEN": "t"})
    assert closed == 1
    assert "cannot reach" in capsys.readouterr().err


def test_the_secrets_of_avatar_dev_are_read_from_the_data_dir(
    admin_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `avatar dev`, neither the pepper nor the admin token needs exporting."""
    secrets_file = admin_stack.data_dir / "dev-secrets.json"
    secrets_file.write_text(
        json.dumps(
            {"API_KEY_PEPPER": admin_stack.env["API_KEY_PEPPER"], "ADMIN_TOKEN": ADMIN_TOKEN}
        )
    )
    data_dir = ["--data-dir", str(admin_stack.data_dir)]
    out = io.StringIO()
    assert admin_cli.main([*data_dir, "keys", "create", "--name", "dev"], {}, out) == 0
    assert jobs_status(admin_stack, printed_key(out.getvalue())) == 200
    out = io.StringIO()
    assert admin_cli.main([*data_dir, "--url", admin_stack.url, "keys", "list"], {}, out) == 0
    assert "'dev'" in out.getvalue()
    secrets_file.write_text("{not json")
    assert admin_cli.main([*data_dir, "keys", "list"], {}) == 1
    assert "delete it" in capsys.readouterr().err
