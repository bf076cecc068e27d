"""`avatar dev`: the local edge and one GPU agent as supervised subprocesses.

The server packages are never imported here: they run as `python -m ...` children, so the
SDK stays server-free and a crash in either child cannot take this supervisor down with it.
"""

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import httpx

from avatar_client.config import DEFAULT_URL, DEV_DATA_DIR, DEV_SECRETS_FILE

SERVER_MODULES = ("dotenv", "pydantic_settings", "litestar", "uvicorn", "av", "numpy", "boto3")
"""What the edge and the agent import: the `[edge]` and `[agent]` extras, not the client."""
SERVER_EXTRAS = "infinite-avatar[edge,agent]"
DEFAULT_ACCOUNT_ID = "local"
DEFAULT_QUEUE_ID = "avatar-jobs"
DEFAULT_ENGINE = "preview"
WATCHED_PACKAGES = ("contracts", "edge_worker", "gpu_agent", "infinitetalk", "avatar_client")
Changes = Set[tuple[object, str]]
"""One tick of file changes: watchfiles' (change, path) pairs; a read-only set, so that
watchfiles' own set[tuple[Change, str]] is one."""

# Secrets the agent never needs: client keys, the edge's pepper, its URL-signing key, the
# admin token and the blob store's credentials stay out of the process that runs jobs.
_EDGE_ONLY_NAMES = (
    "API_KEYS",
    "API_KEY",
    "AVATAR_API_KEY",
    "API_KEY_PEPPER",
    "SIGNING_SECRET",
    "ADMIN_TOKEN",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
)


class DevError(Exception):
    """A start-up problem worth one clear line (port in use, unreadable secrets, ...)."""


class ChildFailed(DevError):
    """A child exited, or never became ready, while it was expected to run."""


@dataclass(frozen=True)
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 8787
    data_dir: Path = DEV_DATA_DIR
    # None: ENGINE from the environment or `.env` (see `run_dev`), else preview.
    engine: str | None = None
    reload: bool = False

    @property
    def agent_engine(self) -> str:
        return self.engine or DEFAULT_ENGINE

    @property
    def edge_url(self) -> str:
        """Where children and users reach the edge: a wildcard bind is reached on loopback."""
        wildcards = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - no bind
        host = wildcards.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class DevSecrets:
    api_keys: str
    agent_token: str
    cf_api_token: str
    api_key_pepper: str
    signing_secret: str
    # The key to show the user when it came from us (generated now or reused), else None.
    local_api_key: str | None
    path: Path
    # For `avatar-admin --url` against this edge (it reads it from the same file).
    admin_token: str | None = None


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    # When set, the next child starts only after this URL answers any HTTP response.
    ready_url: str | None = None


def load_env(cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The environment with `cwd/.env` underneath it: real variables always win."""
    from dotenv import dotenv_values  # the [edge] extra: run_dev checks it is installed

    merged: dict[str, str] = {}
    dotenv_path = cwd / ".env"
    if dotenv_path.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(env)
    return merged


def resolve_secrets(
    env: Mapping[str, str],
    data_dir: Path,
    *,
    token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> DevSecrets:
    """Take secrets from the environment, else from `dev-secrets.json`, else generate them.

    Generated values are persisted (mode 0600) so the API key a user pasted keeps working
    across restarts.
    """
    path = data_dir / DEV_SECRETS_FILE
    stored = read_secrets(path)
    generated: dict[str, str] = {}

    def pick(name: str, make: Callable[[], str], *env_names: str) -> tuple[str, bool]:
        for env_name in env_names or (name,):
            if env.get(env_name):
                return env[env_name], False
        if not stored.get(name):
            generated[name] = make()
        return stored.get(name) or generated[name], True

    api_key, ours = pick("API_KEYS", lambda: f"sk_local_{token()}", "API_KEYS", "API_KEY")
    agent_token, _ = pick("AGENT_TOKEN", token)
    cf_api_token, _ = pick("CF_API_TOKEN", token)
    api_key_pepper, _ = pick("API_KEY_PEPPER", token)
    signing_secret, _ = pick("SIGNING_SECRET", token)
    admin_token, _ = pick("ADMIN_TOKEN", token)
    if generated:
        _write_secrets(path, {**stored, **generated})
    return DevSecrets(
        api_keys=api_key,
        agent_token=agent_token,
        cf_api_token=cf_api_token,
        api_key_pepper=api_key_pepper,
        signing_secret=signing_secret,
        local_api_key=api_key if ours else None,
        path=path,
        admin_token=admin_token,
    )


def read_secrets(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DevError(f"cannot read {path} ({exc}); delete it to generate new secrets") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise DevError(f"{path} is not a JSON object of strings; delete it to regenerate")
    return data


def _write_secrets(path: Path, values: Mapping[str, str]) -> None:
    """Write via a 0600 temporary file and rename, so the secrets are never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        json.dump(dict(values), out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def child_environments(
    env: Mapping[str, str], dev_secrets: DevSecrets, options: DevOptions
) -> tuple[dict[str, str], dict[str, str]]:
    """The edge's and the agent's environments: the user's settings plus the wiring between them."""
    shared = {
        **env,
        "AGENT_TOKEN": dev_secrets.agent_token,
        "CF_API_TOKEN": dev_secrets.cf_api_token,
        "CF_ACCOUNT_ID": env.get("CF_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID,
        "CF_QUEUE_ID": env.get("CF_QUEUE_ID") or DEFAULT_QUEUE_ID,
        "PYTHONUNBUFFERED": env.get("PYTHONUNBUFFERED") or "1",
    }
    edge = {
        **shared,
        "API_KEYS": dev_secrets.api_keys,
        "API_KEY_PEPPER": dev_secrets.api_key_pepper,
        "SIGNING_SECRET": dev_secrets.signing_secret,
        **({"ADMIN_TOKEN": dev_secrets.admin_token} if dev_secrets.admin_token else {}),
        "PUBLIC_URL": env.get("PUBLIC_URL") or options.edge_url,
        # Local receivers (127.0.0.1, localhost) may take webhooks from a local stack.
        "WEBHOOK_ALLOW_PRIVATE": env.get("WEBHOOK_ALLOW_PRIVATE") or "1",
    }
    agent = {
        **{k: v for k, v in shared.items() if k not in _EDGE_ONLY_NAMES},
        "EDGE_URL": options.edge_url,
        "CF_API_BASE": f"{options.edge_url}/client/v4",
        "ENGINE": options.agent_engine,
        # Below the supervisor's 5 s stop timeout, so a job cut short by Ctrl-C is handed
        # back to the queue instead of waiting for the heartbeat timeout.
        "SHUTDOWN_GRACE_SECONDS": env.get("SHUTDOWN_GRACE_SECONDS") or "3",
    }
    return edge, agent


def default_commands(
    options: DevOptions, python: str = sys.executable
) -> tuple[list[str], list[str]]:
    """The real children: the local edge and one agent, run by this same interpreter."""
    edge = [
        python,
        "-m",
        "edge_worker.local",
        "serve",
        "--host",
        options.host,
        "--port",
        str(options.port),
        "--data-dir",
        str(options.data_dir),
    ]
    agent = [python, "-m", "gpu_agent.cli", "run", "--engine", options.agent_engine]
    return edge, agent


class ProcessGroup:
    """Starts children in order (waiting for each one's readiness) and stops them together."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        stop_event: threading.Event,
        ready_timeout: float = 30.0,
        grace: float = 5.0,
        poll_interval: float = 0.1,
    ) -> None:
        self._specs = list(specs)
        self._stop_event = stop_event
        self._ready_timeout = ready_timeout
        self._grace = grace
        self._poll_interval = poll_interval
        self._running: list[tuple[ChildSpec, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        return {spec.name: proc.pid for spec, proc in self._running}

    def start(self) -> bool:
        """Start every child; False if a stop was requested meanwhile (all are then stopped).

        Raises ChildFailed, after stopping whatever did start, when a child dies or is not
        ready in time.
        """
        try:
            for spec in self._specs:
                try:
                    proc = subprocess.Popen(list(spec.argv), env=dict(spec.env))
                except OSError as exc:
                    raise ChildFailed(f"cannot start {spec.name}: {exc}") from exc
                self._running.append((spec, proc))
                if spec.ready_url and not self._wait_ready(spec, proc):
                    self.stop()
                    return False
        except ChildFailed:
            self.stop()
            raise
        return True

    def dead_child(self) -> tuple[str, int] | None:
        """The first child that has exited, with its exit code."""
        for spec, proc in self._running:
            code = proc.poll()
            if code is not None:
                return spec.name, code
        return None

    def stop(self) -> None:
        """Stop the children after the first (the agents) together, then the first (the edge
        they report their hand-backs to): SIGTERM, then SIGKILL any still up after `grace`."""
        running = [proc for _, proc in self._running]
        self._running = []
        for wave in (running[1:], running[:1]):
            for proc in wave:
                proc.terminate()
            deadline = time.monotonic() + self._grace
            for proc in wave:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def _wait_ready(self, spec: ChildSpec, proc: subprocess.Popen[bytes]) -> bool:
        assert spec.ready_url is not None
        deadline = time.monotonic() + self._ready_timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise ChildFailed(
                    f"{spec.name} exited with code {code} before {spec.ready_url} answered "
                    "(see its output above)"
                )
            try:
                httpx.get(spec.ready_url, timeout=1.0)
                return True
            except httpx.TransportError:
                pass
            if time.monotonic() >= deadline:
                raise ChildFailed(
                    f"{spec.name} did not answer {spec.ready_url} within {self._ready_timeout:g} s"
                )
            if self._stop_event.wait(self._poll_interval):
                return False


def supervise(
    group: ProcessGroup,
    ticks: Iterable[Changes],
    stop_event: threading.Event,
    *,
    restart_on_failure: bool,
    out: TextIO,
    on_first_start: Callable[[], None] = lambda: None,
) -> int:
    """Run the group until stopped; `ticks` yields file changes (empty sets between them).

    Without reload a dead child ends the run (exit 1). With reload it stops the other and
    waits for the next change, as a broken edit must not end the session.
    """
    announced = False

    def start() -> bool:
        nonlocal announced
        try:
            started = group.start()
        except ChildFailed as exc:
            print(f"error: {exc}", file=out)
            return False
        if started and not announced:
            announced = True
            on_first_start()
        return started

    try:
        running = start()
        if not running and not stop_event.is_set() and not restart_on_failure:
            return 1
        for changes in ticks:
            if stop_event.is_set():
                break
            if changes:
                names = sorted({Path(path).name for _, path in changes})
                print(f"changed: {', '.join(names)}; restarting edge and agent", file=out)
                group.stop()
                running = start()
                continue
            dead = group.dead_child() if running else None
            if dead is None or stop_event.is_set():
                continue
            name, code = dead
            print(f"error: {name} exited with code {code}; stopping the others", file=out)
            group.stop()
            running = False
            if not restart_on_failure:
                return 1
            print("waiting for a code change to restart", file=out)
        return 0
    finally:
        group.stop()


def idle_ticks(stop_event: threading.Event, interval: float = 0.2) -> Iterator[Changes]:
    """No file watching: an empty change set every `interval` until stopped."""
    while not stop_event.wait(interval):
        yield set()


def watch_ticks(stop_event: threading.Event, paths: Sequence[Path]) -> Iterator[Changes]:
    """Python-file changes under `paths`, with empty sets in between so children get polled."""
    import watchfiles  # only `--reload` needs it

    yield from watchfiles.watch(
        *paths,
        watch_filter=watchfiles.PythonFilter(),
        stop_event=stop_event,
        yield_on_timeout=True,
        rust_timeout=200,
    )


def package_dirs(names: Sequence[str] = WATCHED_PACKAGES) -> list[Path]:
    """Directories of the project packages, found without importing them."""
    dirs: list[Path] = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(Path(p) for p in spec.submodule_search_locations)
    return dirs


def missing_modules(names: Sequence[str] = SERVER_MODULES) -> list[str]:
    """The server's modules this interpreter lacks, found without importing them."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def ensure_port_free(host: str, port: int) -> None:
    """Fail early and clearly instead of letting a health check reach some other server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DevError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is another server "
                "(maybe another `avatar dev`) running? Pick one with --port"
            ) from exc


@contextlib.contextmanager
def stop_on_signals(stop_event: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM request an orderly stop instead of killing this supervisor mid-way."""

    def handler(signum: int, frame: object) -> None:
        stop_event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def banner(options: DevOptions, dev_secrets: DevSecrets) -> str:
    """What to paste next: the API key (when we made it), the URL and a first request."""
    url = options.edge_url
    rule = "=" * 72
    lines = ["", rule, f"avatar dev: edge on {url}, agent engine {options.agent_engine}"]
    exports = [] if url == DEFAULT_URL else [f"    export AVATAR_URL={url}"]
    if dev_secrets.local_api_key is not None:
        lines += [
            f"API key (local, kept in {dev_secrets.path}):",
            f"    {dev_secrets.local_api_key}",
        ]
        exports.append(f"    export AVATAR_API_KEY={dev_secrets.local_api_key}")
    if exports:
        lines += ["Paste into the shell where you run `avatar` or curl:", *exports]
    lines += [
        rule,
        'try: curl -H "Authorization: Bearer $AVATAR_API_KEY" -F image=@examples/portrait.png '
        f"-F audio=@examples/speech.wav -F prompt='a person talking' {url}/generate",
        " or: avatar generate examples/portrait.png examples/speech.wav "
        "--prompt 'a person talking' -o out.mp4",
        "Ctrl-C stops both.",
        "",
    ]
    return "\n".join(lines)


def run_dev(
    options: DevOptions,
    *,
    env: Mapping[str, str],
    cwd: Path,
    out: TextIO,
    commands: Callable[[DevOptions], tuple[list[str], list[str]]] = default_commands,
    stop_event: threading.Event | None = None,
    find_missing: Callable[[], list[str]] = missing_modules,
) -> int:
    """Entry point of `avatar dev`; returns the exit status."""
    if missing := find_missing():
        print(
            f"error: `avatar dev` runs the edge and an agent, which need {', '.join(missing)}: "
            f"pip install '{SERVER_EXTRAS}' (the client alone installs without them)",
            file=out,
        )
        return 1
    stop_event = stop_event or threading.Event()
    merged = load_env(cwd, env)
    options = replace(options, engine=options.engine or merged.get("ENGINE"))
    try:
        dev_secrets = resolve_secrets(merged, options.data_dir)
        ensure_port_free(options.host, options.port)
    except DevError as exc:
        print(f"error: {exc}", file=out)
        return 1
    edge_env, agent_env = child_environments(merged, dev_secrets, options)
    edge_cmd, agent_cmd = commands(options)
    group = ProcessGroup(
        [
            ChildSpec("edge", edge_cmd, edge_env, ready_url=f"{options.edge_url}/health"),
            ChildSpec("agent", agent_cmd, agent_env),
        ],
        stop_event=stop_event,
    )
    ticks = watch_ticks(stop_event, package_dirs()) if options.reload else idle_ticks(stop_event)
    with stop_on_signals(stop_event):
        code = supervise(
            group,
            ticks,
            stop_event,
            restart_on_failure=options.reload,
            out=out,
            on_first_start=lambda: print(banner(options, dev_secrets), file=out, flush=True),
        )
    print("stopped edge and agent", file=out)
    return code
