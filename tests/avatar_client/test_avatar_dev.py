"""`avatar dev`: secrets, child environments and the supervisor, with tiny real children."""

import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from avatar_client import dev
from avatar_client.config import DEV_SECRETS_FILE
from avatar_client.dev import (
    ChildFailed,
    ChildSpec,
    DevError,
    DevOptions,
    DevSecrets,
    ProcessGroup,
)

ANY_HOST = "0.0.0.0"  # noqa: S104 - a value under test, nothing binds it
PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(30)"]
# A stand-in for the edge: answers every GET with 200; optionally ignores SIGTERM.
SERVER = """
import http.server, signal, sys
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server(port: int, *flags: str) -> list[str]:
    return [PY, "-c", SERVER, str(port), *flags]


def exiting(code: int, after: float = 0.0) -> list[str]:
    return [PY, "-c", f"import time; time.sleep({after}); raise SystemExit({code})"]


def edge_spec(port: int, *flags: str) -> ChildSpec:
    return ChildSpec(
        "edge", server(port, *flags), dict(os.environ), f"http://127.0.0.1:{port}/health"
    )


def group(*specs: ChildSpec, stop: threading.Event | None = None, **kw: float) -> ProcessGroup:
    return ProcessGroup(specs, stop_event=stop or threading.Event(), poll_interval=0.02, **kw)


def fixed_tokens() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"token{n:02d}-0123456789abcdef"


# --- settings ---------------------------------------------------------------------------


def test_dotenv_fills_gaps_but_real_env_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FROM_FILE=1\nSHARED=file\nEMPTY\n")
    merged = dev.load_env(tmp_path, {"SHARED": "real"})
    assert merged == {"FROM_FILE": "1", "SHARED": "real"}
    assert dev.load_env(tmp_path / "elsewhere", {"A": "b"}) == {"A": "b"}


def test_secrets_are_generated_persisted_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    tokens = fixed_tokens()
    first = dev.resolve_secrets({}, data_dir, token=lambda: next(tokens))
    assert first.api_keys == "sk_local_token01-0123456789abcdef"
    assert first.local_api_key == first.api_keys
    assert (first.agent_token, first.cf_api_token, first.api_key_pepper, first.signing_secret) == (
        "token02-0123456789abcdef",
        "token03-0123456789abcdef",
        "token04-0123456789abcdef",
        "token05-0123456789abcdef",
    )
    assert first.admin_token == "token06-0123456789abcdef"
    path = data_dir / DEV_SECRETS_FILE
    assert first.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "API_KEYS": first.api_keys,
        "AGENT_TOKEN": first.agent_token,
        "CF_API_TOKEN": first.cf_api_token,
        "API_KEY_PEPPER": first.api_key_pepper,
        "SIGNING_SECRET": first.signing_secret,
        "ADMIN_TOKEN": first.admin_token,
    }
    mtime = path.stat().st_mtime_ns

    again = dev.resolve_secrets({}, data_dir, token=lambda: pytest.fail("must reuse"))
    assert again == first
    assert path.stat().st_mtime_ns == mtime


def test_default_token_generator_makes_long_urlsafe_keys(tmp_path: Path) -> None:
    made = dev.resolve_secrets({}, tmp_path)
    assert made.api_keys.startswith("sk_local_")
    assert len(made.api_keys) > 40
    assert len({made.agent_token, made.cf_api_token, made.api_key_pepper, made.signing_secret}) == 4


def test_configured_secrets_are_used_and_never_written(tmp_path: Path) -> None:
    env = {
        "API_KEYS": "sk_a,sk_b",
        "AGENT_TOKEN": "agent-tok",
        "CF_API_TOKEN": "cf-tok",
        "API_KEY_PEPPER": "pepper",
        "SIGNING_SECRET": "sign-tok",
        "ADMIN_TOKEN": "admin-tok",
    }
    got = dev.resolve_secrets(env, tmp_path)
    assert (got.api_keys, got.agent_token, got.cf_api_token) == ("sk_a,sk_b", "agent-tok", "cf-tok")
    assert (got.api_key_pepper, got.signing_secret, got.admin_token) == (
        "pepper",
        "sign-tok",
        "admin-tok",
    )
    assert got.local_api_key is None
    assert not (tmp_path / DEV_SECRETS_FILE).exists()

    single = dev.resolve_secrets({"API_KEY": "sk_single", **env, "API_KEYS": ""}, tmp_path)
    assert (single.api_keys, single.local_api_key) == ("sk_single", None)


def test_only_missing_secrets_are_generated_and_stored_values_kept(tmp_path: Path) -> None:
    path = tmp_path / DEV_SECRETS_FILE
    path.write_text(json.dumps({"API_KEYS": "sk_local_old", "OTHER": "x"}))
    got = dev.resolve_secrets({"AGENT_TOKEN": "agent-tok"}, tmp_path, token=lambda: "new")
    assert (got.api_keys, got.agent_token, got.cf_api_token) == ("sk_local_old", "agent-tok", "new")
    assert got.local_api_key == "sk_local_old"
    assert json.loads(path.read_text()) == {
        "API_KEYS": "sk_local_old",
        "OTHER": "x",
        "CF_API_TOKEN": "new",
        "API_KEY_PEPPER": "new",
        "SIGNING_SECRET": "new",
        "ADMIN_TOKEN": "new",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"API_KEYS": 5}'])
def test_unreadable_secrets_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / DEV_SECRETS_FILE).write_text(content)
    with pytest.raises(DevError, match="delete it"):
        dev.resolve_secrets({}, tmp_path)


def secrets_for_test(tmp_path: Path) -> DevSecrets:
    return DevSecrets(
        "sk_local_k",
        "agent-tok",
        "cf-tok",
        "pepper-k",
        "sign-tok",
        "sk_local_k",
        tmp_path / "s.json",
        "admin-tok",
    )


def test_child_environments_wire_edge_and_agent(tmp_path: Path) -> None:
    env = {"PATH": "/bin", "API_KEY": "ignored", "LOG_LEVEL": "DEBUG", "ENGINE": "infinitetalk"}
    options = DevOptions(host="127.0.0.1", port=9001, engine="preview")  # over env's ENGINE
    edge, agent = dev.child_environments(env, secrets_for_test(tmp_path), options)
    assert edge["API_KEYS"] == "sk_local_k"
    assert edge["API_KEY_PEPPER"] == "pepper-k"
    assert edge["ADMIN_TOKEN"] == "admin-tok"
    assert edge["PUBLIC_URL"] == "http://127.0.0.1:9001"
    assert edge["WEBHOOK_ALLOW_PRIVATE"] == "1" and "WEBHOOK_ALLOW_PRIVATE" not in agent
    for child in (edge, agent):
        assert child["PATH"] == "/bin"
        assert child["LOG_LEVEL"] == "DEBUG"
        assert child["AGENT_TOKEN"] == "agent-tok"
        assert child["CF_API_TOKEN"] == "cf-tok"
        assert child["CF_ACCOUNT_ID"] == "local"
        assert child["CF_QUEUE_ID"] == "avatar-jobs"
        assert child["PYTHONUNBUFFERED"] == "1"
    assert edge["SIGNING_SECRET"] == "sign-tok" and "SIGNING_SECRET" not in agent
    assert agent["EDGE_URL"] == "http://127.0.0.1:9001"
    assert agent["CF_API_BASE"] == "http://127.0.0.1:9001/client/v4"
    assert agent["ENGINE"] == "preview"
    _, unset = dev.child_environments({}, secrets_for_test(tmp_path), DevOptions())
    assert unset["ENGINE"] == "preview"
    assert not {"API_KEYS", "API_KEY", "AVATAR_API_KEY", "API_KEY_PEPPER", "ADMIN_TOKEN"} & (
        agent.keys()
    )


def test_child_environments_keep_configured_queue_and_public_url(tmp_path: Path) -> None:
    env = {"CF_ACCOUNT_ID": "acct", "CF_QUEUE_ID": "q", "PUBLIC_URL": "https://tunnel.example"}
    edge, agent = dev.child_environments(env, secrets_for_test(tmp_path), DevOptions())
    assert (edge["CF_ACCOUNT_ID"], agent["CF_QUEUE_ID"]) == ("acct", "q")
    assert edge["PUBLIC_URL"] == "https://tunnel.example"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8787"),
        (ANY_HOST, "http://127.0.0.1:8787"),
        ("::", "http://[::1]:8787"),
        ("localhost", "http://localhost:8787"),
    ],
)
def test_edge_url_reaches_wildcard_binds_on_loopback(host: str, url: str) -> None:
    assert DevOptions(host=host).edge_url == url


def test_default_commands_run_the_packages_with_this_interpreter() -> None:
    options = DevOptions(host=ANY_HOST, port=9, data_dir=Path("d"), engine="infinitetalk")
    edge, agent = dev.default_commands(options)
    assert edge == [
        sys.executable, "-m", "edge_worker.local", "serve",
        "--host", ANY_HOST, "--port", "9", "--data-dir", "d",
    ]  # fmt: skip
    assert agent == [sys.executable, "-m", "gpu_agent.cli", "run", "--engine", "infinitetalk"]


def test_banner_shows_key_export_line_url_and_curl(tmp_path: Path) -> None:
    text = dev.banner(DevOptions(port=9001), secrets_for_test(tmp_path))
    assert "export AVATAR_API_KEY=sk_local_k" in text
    assert "export AVATAR_URL=http://127.0.0.1:9001" in text
    assert 'curl -H "Authorization: Bearer $AVATAR_API_KEY"' in text
    assert "http://127.0.0.1:9001/generate" in text

    configured = DevSecrets("sk_x", "a", "c", "p", "s", None, tmp_path / "s.json")
    quiet = dev.banner(DevOptions(), configured)
    assert "sk_x" not in quiet
    assert "export" not in quiet


def test_package_dirs_finds_sources_without_importing() -> None:
    dirs = dev.package_dirs(("avatar_client", "no_such_package_here", "json"))
    assert Path(dev.__file__).parent in dirs
    assert all(d.is_dir() for d in dirs)


def test_ensure_port_free_reports_port_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(DevError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            dev.ensure_port_free("127.0.0.1", port)
    dev.ensure_port_free("127.0.0.1", free_port())


# --- process group ----------------------------------------------------------------------


def test_group_waits_for_readiness_then_stops_everything() -> None:
    port = free_port()
    with group(edge_spec(port), ChildSpec("agent", SLEEPER, dict(os.environ))) as procs:
        assert procs.start()
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "ok"
        assert set(procs.pids) == {"edge", "agent"}
        assert procs.dead_child() is None
    assert procs.pids == {}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_group_kills_children_that_ignore_sigterm() -> None:
    port = free_port()
    procs = group(edge_spec(port, "--ignore-term"), grace=0.3)
    assert procs.start()
    pid = procs.pids["edge"]
    started = time.monotonic()
    procs.stop()
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_group_reports_a_child_that_exits_before_ready() -> None:
    spec = ChildSpec("edge", exiting(3), dict(os.environ), f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(ChildFailed, match="edge exited with code 3 before"):
        group(spec).start()


def test_group_gives_up_on_readiness_after_timeout() -> None:
    spec = ChildSpec("edge", SLEEPER, dict(os.environ), f"http://127.0.0.1:{free_port()}/")
    procs = group(spec, ChildSpec("agent", SLEEPER, dict(os.environ)), ready_timeout=0.3)
    with pytest.raises(ChildFailed, match=r"did not answer .* within 0\.3 s"):
        procs.start()
    assert procs.pids == {}


def test_group_start_returns_false_when_stopped_while_waiting() -> None:
    stop = threading.Event()
    stop.set()
    spec = ChildSpec("edge", SLEEPER, dict(os.environ), f"http://127.0.0.1:{free_port()}/")
    procs = group(spec, ChildSpec("agent", SLEEPER, dict(os.environ)), stop=stop)
    assert procs.start() is False
    assert procs.pids == {}


def test_group_reports_unstartable_command() -> None:
    procs = group(
        ChildSpec("edge", SLEEPER, dict(os.environ)),
        ChildSpec("agent", ["/nonexistent/avatar-agent"], dict(os.environ)),
    )
    with pytest.raises(ChildFailed, match="cannot start agent"):
        procs.start()
    assert procs.pids == {}


def test_group_passes_the_environment() -> None:
    check = [PY, "-c", "import os, sys; sys.exit(0 if os.environ['EDGE_URL'] == 'x' else 5)"]
    procs = group(ChildSpec("agent", check, {**os.environ, "EDGE_URL": "x"}))
    procs.start()
    deadline = time.monotonic() + 10
    while (dead := procs.dead_child()) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dead == ("agent", 0)


# --- supervision --------------------------------------------------------------------------


def test_supervise_stops_the_other_child_and_fails_when_one_dies() -> None:
    port = free_port()
    stop = threading.Event()
    procs = group(edge_spec(port), ChildSpec("agent", exiting(4, 0.2), dict(os.environ)), stop=stop)
    out = io.StringIO()
    code = dev.supervise(procs, dev.idle_ticks(stop, 0.02), stop, restart_on_failure=False, out=out)
    assert code == 1
    assert "error: agent exited with code 4; stopping the others" in out.getvalue()
    assert procs.pids == {}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_supervise_returns_0_when_stop_is_requested() -> None:
    stop = threading.Event()
    started: list[bool] = []
    procs = group(ChildSpec("agent", SLEEPER, dict(os.environ)), stop=stop)
    threading.Timer(0.3, stop.set).start()
    code = dev.supervise(
        procs,
        dev.idle_ticks(stop, 0.02),
        stop,
        restart_on_failure=False,
        out=io.StringIO(),
        on_first_start=lambda: started.append(True),
    )
    assert (code, started, procs.pids) == (0, [True], {})


def test_supervise_fails_fast_when_start_fails_without_reload() -> None:
    stop = threading.Event()
    spec = ChildSpec("edge", exiting(2), dict(os.environ), f"http://127.0.0.1:{free_port()}/")
    out = io.StringIO()
    code = dev.supervise(group(spec, stop=stop), iter([]), stop, restart_on_failure=False, out=out)
    assert code == 1
    assert "error: edge exited with code 2" in out.getvalue()


def test_supervise_restarts_on_changes_and_survives_crashes_with_reload() -> None:
    stop = threading.Event()
    procs = group(ChildSpec("agent", SLEEPER, dict(os.environ)), stop=stop)
    seen: list[dict[str, int]] = []
    announced: list[bool] = []

    def ticks() -> Iterator[set[tuple[object, str]]]:
        seen.append(procs.pids)
        yield {(1, "/src/edge_worker/app.py"), (2, "/src/gpu_agent/cli.py")}
        seen.append(procs.pids)
        os.kill(procs.pids["agent"], signal.SIGKILL)
        procs._running[0][1].wait()
        yield set()
        seen.append(procs.pids)
        yield set()

    out = io.StringIO()
    code = dev.supervise(
        procs, ticks(), stop, restart_on_failure=True, out=out,
        on_first_start=lambda: announced.append(True),
    )  # fmt: skip
    assert code == 0
    assert seen[0]["agent"] != seen[1]["agent"]
    assert seen[2] == {}
    text = out.getvalue()
    assert "changed: app.py, cli.py; restarting edge and agent" in text
    assert f"agent exited with code {-signal.SIGKILL}" in text
    assert "waiting for a code change to restart" in text
    assert announced == [True]


def test_idle_ticks_end_when_stopped() -> None:
    stop = threading.Event()
    ticks = dev.idle_ticks(stop, 0.01)
    assert next(ticks) == set()
    stop.set()
    assert list(ticks) == []


def test_watch_ticks_report_python_changes(tmp_path: Path) -> None:
    stop = threading.Event()
    ticks = dev.watch_ticks(stop, [tmp_path])
    assert next(ticks) == set()
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "app.py").write_text("x = 1\n")
    deadline = time.monotonic() + 10
    changes: dev.Changes = set()
    while not changes and time.monotonic() < deadline:
        changes = next(ticks)
    assert {Path(p).name for _, p in changes} == {"app.py"}
    stop.set()
    assert list(ticks) in ([], [set()])


def test_stop_on_signals_sets_the_event_and_restores_handlers() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with dev.stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before


# --- run_dev ---------------------------------------------------------------------------------


def test_run_dev_starts_both_prints_banner_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    options = DevOptions(port=port, data_dir=tmp_path / "data")
    called: list[DevOptions] = []

    def commands(opts: DevOptions) -> tuple[list[str], list[str]]:
        assert opts == replace(options, engine="infinitetalk")
        called.append(opts)
        return server(port), SLEEPER

    def interrupt_once_up() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "Ctrl-C stops both" in out.getvalue():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    (tmp_path / ".env").write_text("ENGINE=infinitetalk\n")
    out = io.StringIO()
    threading.Thread(target=interrupt_once_up, daemon=True).start()
    code = dev.run_dev(options, env={}, cwd=tmp_path, out=out, commands=commands)
    assert code == 0
    text = out.getvalue()
    saved = json.loads((tmp_path / "data" / DEV_SECRETS_FILE).read_text())
    assert f"export AVATAR_API_KEY={saved['API_KEYS']}" in text
    assert text.rstrip().endswith("stopped edge and agent")
    assert len(called) == 1
    assert "agent engine infinitetalk" in text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_run_dev_exits_non_zero_when_a_child_dies(tmp_path: Path) -> None:
    port = free_port()
    out = io.StringIO()
    code = dev.run_dev(
        DevOptions(port=port, data_dir=tmp_path),
        env={**os.environ, "API_KEYS": "sk_configured_key_000"},
        cwd=tmp_path,
        out=out,
        commands=lambda _: (server(port), exiting(9, 0.2)),
    )
    assert code == 1
    assert "agent exited with code 9" in out.getvalue()
    assert "sk_configured_key_000" not in out.getvalue()


def test_run_dev_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = io.StringIO()
        code = dev.run_dev(
            DevOptions(port=port, data_dir=tmp_path),
            env={},
            cwd=tmp_path,
            out=out,
            commands=lambda _: pytest.fail("must not start children"),
        )
    assert code == 1
    assert out.getvalue().startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_run_dev_with_reload_watches_the_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched: list[list[Path]] = []

    def fake_watch(stop: threading.Event, paths: list[Path]) -> Iterator[set[tuple[object, str]]]:
        watched.append(paths)
        yield set()

    monkeypatch.setattr(dev, "watch_ticks", fake_watch)
    port = free_port()
    code = dev.run_dev(
        DevOptions(port=port, data_dir=tmp_path, reload=True),
        env={},
        cwd=tmp_path,
        out=io.StringIO(),
        commands=lambda _: (server(port), SLEEPER),
    )
    assert code == 0
    assert Path(dev.__file__).parent in watched[0]


def test_stopping_a_group_twice_is_harmless() -> None:
    procs = group(ChildSpec("agent", SLEEPER, dict(os.environ)))
    procs.start()
    procs.stop()
    procs.stop()
    assert subprocess.call([PY, "-c", "pass"]) == 0


def test_supervise_ignores_changes_reported_after_a_stop() -> None:
    stop = threading.Event()
    procs = group(ChildSpec("agent", SLEEPER, dict(os.environ)), stop=stop)

    def ticks() -> Iterator[set[tuple[object, str]]]:
        stop.set()
        yield {(1, "/src/app.py")}
        pytest.fail("must stop at the first tick after a stop")

    out = io.StringIO()
    assert dev.supervise(procs, ticks(), stop, restart_on_failure=True, out=out) == 0
    assert "restarting" not in out.getvalue()


def test_dev_without_the_server_extras_names_the_extra_to_install(tmp_path: Path) -> None:
    out = io.StringIO()
    assert dev.missing_modules(("json", "no_such_module_for_avatar")) == [
        "no_such_module_for_avatar"
    ]
    code = dev.run_dev(
        DevOptions(data_dir=tmp_path),
        env={},
        cwd=tmp_path,
        out=out,
        find_missing=lambda: ["litestar", "av"],
    )
    assert code == 1
    assert "litestar, av" in out.getvalue()
    assert "pip install 'infinite-avatar[edge,agent]'" in out.getvalue()
