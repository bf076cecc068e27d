"""`avatar serve`: given secrets only, the children's wiring, and the supervisor around
tiny real children (tests/e2e/test_serve.py runs the real edge and agent)."""

import io
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from avatar_client import cli, serve
from avatar_client.cli import build_parser
from avatar_client.dev import DevOptions
from avatar_client.serve import ServeOptions, child_specs, missing_secrets, run_serve
from tests.avatar_client.test_avatar_dev import ANY_HOST, SLEEPER, free_port, server

SECRETS = {
    "API_KEYS": "sk_serve_key_0123456789",
    "AGENT_TOKEN": "serve-agent-token-0123456789",
    "API_KEY_PEPPER": "serve-pepper-0123456789",
    "SIGNING_SECRET": "serve-signing-0123456789",
}
STORE = {"BLOB_STORE": "s3", "S3_BUCKET": "videos", "S3_SECRET_ACCESS_KEY": "s3-secret-0123"}


def options(env: dict[str, str], **overrides: object) -> ServeOptions:
    return ServeOptions.from_env(env, **overrides)


def test_options_come_from_arguments_then_the_environment() -> None:
    default = options({})
    assert (default.host, default.port, default.data_dir) == (
        ANY_HOST,
        8787,
        Path("/runpod-volume/avatar"),
    )
    assert (default.engine, default.agents, default.shutdown_grace_seconds) == ("preview", 1, 60)
    env = {"PORT": "8000", "DATA_DIR": "/data", "ENGINE": "infinitetalk"}
    assert options(env).port == 8000 and options(env).data_dir == Path("/data")
    assert options(env, port=9000, engine="preview").port == 9000
    assert options(env, engine="preview").engine == "preview"


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (("API_KEYS",), ["API_KEYS or ADMIN_TOKEN"]),
        (("AGENT_TOKEN", "SIGNING_SECRET"), ["AGENT_TOKEN", "SIGNING_SECRET"]),
        (tuple(SECRETS), ["API_KEYS or ADMIN_TOKEN", *list(SECRETS)[1:]]),
    ],
)
def test_it_refuses_to_start_without_given_secrets(
    tmp_path: Path, drop: tuple[str, ...], named: list[str]
) -> None:
    env = {name: value for name, value in SECRETS.items() if name not in drop}
    assert missing_secrets(env) == named
    out = io.StringIO()

    def never(_: DevOptions) -> tuple[list[str], list[str]]:
        raise AssertionError("nothing may start")

    code = run_serve(options(env, data_dir=tmp_path), env=env, out=out, commands=never)
    assert code == 2
    assert f"set {', '.join(named)}" in out.getvalue()
    assert not list(tmp_path.iterdir())  # no secrets file, nothing written


def test_admin_token_alone_is_enough_for_keys() -> None:
    env = {**SECRETS, "ADMIN_TOKEN": "admin-token-0123456789"}
    del env["API_KEYS"]
    assert missing_secrets(env) == []


def test_children_the_edge_then_agents_each_with_its_own_id() -> None:
    env = {**SECRETS, **STORE, "AGENT_ID": "pod", "SHUTDOWN_GRACE_SECONDS": "20"}
    specs = child_specs(env, options(env, agents=3), token=lambda: "generated-queue-token")
    edge, *agents = specs
    assert [spec.name for spec in specs] == ["edge", "agent-0", "agent-1", "agent-2"]
    assert edge.ready_url == "http://127.0.0.1:8787/health"
    assert edge.argv[-6:] == [
        "--host",
        ANY_HOST,
        "--port",
        "8787",
        "--data-dir",
        "/runpod-volume/avatar",
    ]
    assert edge.env["S3_SECRET_ACCESS_KEY"] == "s3-secret-0123"
    assert edge.env["CF_API_TOKEN"] == agents[0].env["CF_API_TOKEN"] == "generated-queue-token"
    assert [agent.env["AGENT_ID"] for agent in agents] == ["pod-0", "pod-1", "pod-2"]
    for agent in agents:
        assert agent.env["SHUTDOWN_GRACE_SECONDS"] == "20"
        assert agent.env["EDGE_URL"] == "http://127.0.0.1:8787"
        for secret in ("API_KEYS", "API_KEY_PEPPER", "SIGNING_SECRET", "S3_SECRET_ACCESS_KEY"):
            assert secret not in agent.env
        assert "CUDA_VISIBLE_DEVICES" not in agent.env  # the preview engine needs no GPU


def test_several_infinitetalk_agents_get_a_gpu_each_unless_told() -> None:
    chosen = options(SECRETS, engine="infinitetalk", agents=2)
    gpus = [spec.env.get("CUDA_VISIBLE_DEVICES") for spec in child_specs(SECRETS, chosen)[1:]]
    assert gpus == ["0", "1"]
    told = {**SECRETS, "CUDA_VISIBLE_DEVICES": "3"}
    assert {spec.env["CUDA_VISIBLE_DEVICES"] for spec in child_specs(told, chosen)[1:]} == {"3"}


@pytest.mark.parametrize(
    ("extra", "public"),
    [
        ({"PUBLIC_URL": "https://avatar.example.com"}, "https://avatar.example.com"),
        ({"RUNPOD_POD_ID": "abc123"}, "https://abc123-8787.proxy.runpod.net"),
        ({}, "http://127.0.0.1:8787"),
    ],
)
def test_links_use_public_url_else_the_pods_proxy_address(
    extra: dict[str, str], public: str
) -> None:
    env = {**SECRETS, **extra}
    assert child_specs(env, options(env))[0].env["PUBLIC_URL"] == public


def test_serve_is_a_command_with_its_options() -> None:
    args = build_parser().parse_args(["serve", "--agents", "2", "--engine", "infinitetalk"])
    assert (args.agents, args.engine, args.port, args.data_dir) == (2, "infinitetalk", None, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--agents", "0"])


def test_run_serve_starts_the_children_and_stops_them_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    out = io.StringIO()

    def terminate_once_up() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "avatar serve: edge on" in out.getvalue():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    threading.Thread(target=terminate_once_up, daemon=True).start()
    env = {**SECRETS, **STORE}
    code = run_serve(
        options(env, port=port, data_dir=tmp_path, agents=2),
        env=env,
        out=out,
        commands=lambda _: (server(port), SLEEPER),
    )
    text = out.getvalue()
    assert code == 0, text
    assert "2 agent(s) with engine preview" in text and "s3 bucket videos" in text
    assert text.rstrip().endswith("stopped the agents and the edge")
    assert not any(secret in text for secret in (*SECRETS.values(), STORE["S3_SECRET_ACCESS_KEY"]))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_without_the_server_extras_it_names_them(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_serve(
        options(SECRETS, data_dir=tmp_path), env=SECRETS, out=out, find_missing=lambda: ["boto3"]
    )
    assert code == 1 and "need boto3" in out.getvalue() and serve.SERVER_EXTRAS in out.getvalue()


def test_a_malformed_port_is_a_usage_error() -> None:
    err = io.StringIO()
    never = cli._make_client
    code = cli.run(["serve"], env={"PORT": "http"}, make_client=never, stdout=err, stderr=err)
    assert code == 2 and "PORT" in err.getvalue()
