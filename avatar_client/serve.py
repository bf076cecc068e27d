"""`avatar serve`: the all-in-one deployment, the edge and N agents on one machine (one
RunPod pod), supervised as `avatar dev` supervises its two children.

What differs from `avatar dev` is what production needs: every secret comes from the
environment (none is generated or written, so a restarted pod keeps its clients' keys and
owners), the edge listens on 0.0.0.0:$PORT behind the platform's proxy, state lives on the
volume (`DATA_DIR`), and a stop waits for the agents' own SIGTERM hand-back of the job in
progress before the edge goes.
"""

import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from avatar_client.dev import (
    DEFAULT_ENGINE,
    SERVER_EXTRAS,
    ChildSpec,
    DevOptions,
    DevSecrets,
    ProcessGroup,
    child_environments,
    default_commands,
    idle_ticks,
    missing_modules,
    stop_on_signals,
    supervise,
)

DEFAULT_DATA_DIR = Path("/runpod-volume/avatar")
DEFAULT_PORT = 8787
DEFAULT_SHUTDOWN_GRACE_SECONDS = 60.0  # the agent's own default (SHUTDOWN_GRACE_SECONDS)
STOP_MARGIN_SECONDS = 10.0
"""How long past the agents' grace a stop waits before it kills: their hand-back report."""
EXIT_CONFIG = 2
REQUIRED_SECRETS = ("AGENT_TOKEN", "API_KEY_PEPPER", "SIGNING_SECRET")
_KEY_NAMES = ("API_KEYS", "API_KEY", "ADMIN_TOKEN")


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    data_dir: Path
    engine: str
    agents: int
    shutdown_grace_seconds: float

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        host: str | None = None,
        port: int | None = None,
        data_dir: Path | None = None,
        engine: str | None = None,
        agents: int = 1,
    ) -> "ServeOptions":
        """Arguments first, then PORT, DATA_DIR, ENGINE and SHUTDOWN_GRACE_SECONDS."""
        return cls(
            host=host or "0.0.0.0",  # noqa: S104 - behind the platform's proxy, on purpose
            port=port or int(env.get("PORT") or DEFAULT_PORT),
            data_dir=data_dir or Path(env.get("DATA_DIR") or DEFAULT_DATA_DIR),
            engine=engine or env.get("ENGINE") or DEFAULT_ENGINE,
            agents=agents,
            shutdown_grace_seconds=float(
                env.get("SHUTDOWN_GRACE_SECONDS") or DEFAULT_SHUTDOWN_GRACE_SECONDS
            ),
        )

    @property
    def dev_options(self) -> DevOptions:
        """The same edge and agent commands and wiring as `avatar dev`."""
        return DevOptions(
            host=self.host, port=self.port, data_dir=self.data_dir, engine=self.engine
        )


def missing_secrets(env: Mapping[str, str]) -> list[str]:
    """The secrets `avatar dev` would generate but a deployment must be given."""
    missing = [] if any(env.get(name) for name in _KEY_NAMES) else ["API_KEYS or ADMIN_TOKEN"]
    return missing + [name for name in REQUIRED_SECRETS if not env.get(name)]


def public_url(env: Mapping[str, str], options: ServeOptions) -> str:
    """PUBLIC_URL; on a RunPod pod, its HTTP proxy address; else the edge on loopback."""
    if env.get("PUBLIC_URL"):
        return env["PUBLIC_URL"]
    if env.get("RUNPOD_POD_ID"):
        return f"https://{env['RUNPOD_POD_ID']}-{options.port}.proxy.runpod.net"
    return options.dev_options.edge_url


def child_specs(
    env: Mapping[str, str],
    options: ServeOptions,
    commands: Callable[[DevOptions], tuple[list[str], list[str]]] = default_commands,
    token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> list[ChildSpec]:
    """The edge, then `options.agents` agents, each with its own id (and, for InfiniteTalk
    with several agents, its own GPU unless CUDA_VISIBLE_DEVICES is set)."""
    given = DevSecrets(
        api_keys=env.get("API_KEYS") or env.get("API_KEY") or "",
        agent_token=env["AGENT_TOKEN"],
        # Only this pod's agents pull the emulated queue: a fresh token per start will do.
        cf_api_token=env.get("CF_API_TOKEN") or token(),
        api_key_pepper=env["API_KEY_PEPPER"],
        signing_secret=env["SIGNING_SECRET"],
        local_api_key=None,
        path=options.data_dir,
        admin_token=env.get("ADMIN_TOKEN"),
    )
    dev_options = options.dev_options
    edge_env, agent_env = child_environments(
        {**env, "PUBLIC_URL": public_url(env, options)}, given, dev_options
    )
    agent_env["SHUTDOWN_GRACE_SECONDS"] = f"{options.shutdown_grace_seconds:g}"
    edge_cmd, agent_cmd = commands(dev_options)
    specs = [ChildSpec("edge", edge_cmd, edge_env, ready_url=f"{dev_options.edge_url}/health")]
    base_id = env.get("AGENT_ID") or socket.gethostname()
    one_gpu_each = options.engine == "infinitetalk" and options.agents > 1
    for index in range(options.agents):
        own = {"AGENT_ID": f"{base_id}-{index}"}
        if one_gpu_each and not env.get("CUDA_VISIBLE_DEVICES"):
            own["CUDA_VISIBLE_DEVICES"] = str(index)
        specs.append(ChildSpec(f"agent-{index}", agent_cmd, {**agent_env, **own}))
    return specs


def banner(env: Mapping[str, str], options: ServeOptions) -> str:
    """Where it listens and keeps things; never a secret."""
    blobs = (
        f"s3 bucket {env.get('S3_BUCKET')}"
        if (env.get("BLOB_STORE") or "fs").lower() == "s3"
        else f"{options.data_dir / 'blobs'}"
    )
    return (
        f"avatar serve: edge on {options.host}:{options.port} ({public_url(env, options)}), "
        f"{options.agents} agent(s) with engine {options.engine}; state in "
        f"{options.data_dir}, blobs in {blobs}; SIGTERM hands back running jobs and stops"
    )


def run_serve(
    options: ServeOptions,
    *,
    env: Mapping[str, str],
    out: TextIO,
    commands: Callable[[DevOptions], tuple[list[str], list[str]]] = default_commands,
    stop_event: threading.Event | None = None,
    find_missing: Callable[[], list[str]] = missing_modules,
) -> int:
    """Entry point of `avatar serve`; returns the exit status."""
    if missing := missing_secrets(env):
        print(
            f"error: `avatar serve` generates no secrets; set {', '.join(missing)} "
            "(README.md, Deploy on one RunPod pod)",
            file=out,
        )
        return EXIT_CONFIG
    if missing := find_missing():
        print(
            f"error: `avatar serve` runs the edge and agents, which need {', '.join(missing)}: "
            f"pip install '{SERVER_EXTRAS}'",
            file=out,
        )
        return 1
    stop_event = stop_event or threading.Event()
    group = ProcessGroup(
        child_specs(env, options, commands),
        stop_event=stop_event,
        grace=options.shutdown_grace_seconds + STOP_MARGIN_SECONDS,
    )
    with stop_on_signals(stop_event):
        code = supervise(
            group,
            idle_ticks(stop_event),
            stop_event,
            restart_on_failure=False,
            out=out,
            on_first_start=lambda: print(banner(env, options), file=out, flush=True),
        )
    print("stopped the agents and the edge", file=out, flush=True)
    return code
