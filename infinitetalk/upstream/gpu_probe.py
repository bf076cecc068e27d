"""`avatar-agent probe`: what this machine has for InfiniteTalk and what the agent would use.

torch is imported here and only here in the agent's own process, and only by the probe
command or by `python -m infinitetalk.upstream.gpu_probe`, which the engine runs as a
short-lived child at start-up: a CUDA context left in the agent would hold VRAM that the
model needs.
"""

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from contracts.settings import SettingsError
from infinitetalk.settings import InfiniteTalkSettings, Mode
from infinitetalk.upstream import pinned
from infinitetalk.upstream.preflight import (
    DOWNLOAD_HINT,
    fast_unavailable,
    setup_problems,
    two_speakers_unavailable,
    weight_problems,
)
from infinitetalk.upstream.profiles import GIB, HostInfo, ResolvedProfile, resolve_profile
from infinitetalk.upstream.weights import (
    WeightStatus,
    check_weights,
    fast_lora_file,
    multi_weights_file,
    quant_available,
    required_weights,
)

MEASURE_TIMEOUT_SECONDS = 120.0
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


class WeightReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    what: str
    path: str
    size_bytes: int | None


class ProbeReport(BaseModel):
    """Everything `avatar-agent probe` prints; `problems` empty means the agent can start."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    upstream_dir: str
    upstream_commit_pinned: str
    upstream_commit_checkout: str | None
    host: HostInfo
    profile: ResolvedProfile
    model_storage_path: str
    weights: list[WeightReport]
    problems: list[str]
    """Every reason the agent cannot start, each missing weight file on its own line (for
    scripts: bench/gpu.py reports them as they are)."""
    setup_problems: list[str]
    """The reasons that are not a missing weight file: the text report names those files
    once, in its weights table, and these here."""
    fast_lora: WeightReport | None
    """The distilled LoRA of `quality=fast`, optional; None when INFINITETALK_FAST_LORA is blank."""
    fast_unavailable: str | None
    """Why the agent would refuse `quality=fast` jobs; None when it serves them."""
    multi_weights: WeightReport
    """The two-speaker weights, optional."""
    two_speakers_unavailable: str | None
    """Why the agent would leave two-speaker jobs to others; None when it takes them."""


def host_ram_bytes(limits: Sequence[Path] = _CGROUP_LIMITS) -> int | None:
    """Physical RAM, or the container's memory limit when that is lower (RunPod sets one)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    for path in limits:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            ram = min(ram, int(raw))
    return ram


def measure_host() -> HostInfo:
    """GPU name and VRAM through torch, plus host RAM; a missing piece is named in `error`."""
    ram = host_ram_bytes()
    try:
        import torch
    except ImportError as exc:
        return HostInfo(host_ram_bytes=ram, error=f"torch is not installed ({exc})")
    versions = {"torch_version": str(torch.__version__), "cuda_version": torch.version.cuda}
    try:
        if not torch.cuda.is_available():
            return HostInfo(host_ram_bytes=ram, error="torch sees no CUDA device", **versions)
        props = torch.cuda.get_device_properties(0)
    except Exception as exc:
        return HostInfo(host_ram_bytes=ram, error=f"CUDA query failed: {exc}", **versions)
    return HostInfo(
        gpu_name=props.name, vram_bytes=props.total_memory, host_ram_bytes=ram, **versions
    )


def measure_in_subprocess(
    python: str = sys.executable, timeout: float = MEASURE_TIMEOUT_SECONDS
) -> HostInfo:
    """`measure_host` in a child process, so no CUDA context stays behind in the caller."""
    try:
        done = subprocess.run(
            [python, "-m", "infinitetalk.upstream.gpu_probe"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return HostInfo.model_validate_json(done.stdout)
    except (OSError, subprocess.SubprocessError, ValidationError) as exc:
        return HostInfo(host_ram_bytes=host_ram_bytes(), error=f"GPU probe failed: {exc}")


def build_report(settings: InfiniteTalkSettings, host: HostInfo) -> ProbeReport:
    profile = resolve_profile(settings, host, lambda q: quant_available(settings, q))
    statuses = check_weights(required_weights(settings, profile.quantization))
    setup = setup_problems(settings)
    lora = fast_lora_file(settings)
    return ProbeReport(
        mode=settings.mode,
        upstream_dir=str(settings.upstream_dir),
        upstream_commit_pinned=pinned.UPSTREAM_COMMIT,
        upstream_commit_checkout=pinned.checkout_commit(settings.upstream_dir),
        host=host,
        profile=profile,
        model_storage_path=str(settings.model_storage_path),
        weights=[_weight(status) for status in statuses],
        problems=setup + weight_problems(settings, statuses),
        setup_problems=setup,
        fast_lora=_weight(check_weights([lora])[0]) if lora is not None else None,
        fast_unavailable=fast_unavailable(settings, profile.quantization),
        multi_weights=_weight(check_weights([multi_weights_file(settings)])[0]),
        two_speakers_unavailable=two_speakers_unavailable(settings, profile.quantization),
    )


def _weight(status: WeightStatus) -> WeightReport:
    return WeightReport(
        what=status.file.what, path=str(status.file.path), size_bytes=status.size_bytes
    )


def format_report(report: ProbeReport) -> str:
    host, profile = report.host, report.profile
    gpu = (
        f"{host.gpu_name}, {host.vram_gib:.1f} GiB VRAM"
        if host.gpu_name and host.vram_gib is not None
        else f"not measured ({host.error})"
    )
    ram = f"{host.host_ram_gib:.1f} GiB" if host.host_ram_gib is not None else "unknown"
    checkout = report.upstream_commit_checkout or "unknown (no .git)"
    if report.upstream_commit_checkout not in (None, report.upstream_commit_pinned):
        checkout += "  <- differs from the pinned commit"
    persistent = profile.num_persistent_param_in_dit
    lines = [
        f"GPU:            {gpu}",
        f"host RAM:       {ram}",
        f"torch:          {host.torch_version or '-'} (CUDA {host.cuda_version or '-'})",
        f"mode:           {report.mode.value}",
        f"upstream:       {report.upstream_dir}",
        f"  pinned:       {report.upstream_commit_pinned}",
        f"  checkout:     {checkout}",
        f"memory profile: {profile.name.value}",
        "  --num_persistent_param_in_dit "
        + ("(not set: whole DiT on GPU)" if persistent is None else str(persistent)),
        f"  --offload_model {profile.offload_model}",
        f"  quantisation: {profile.quantization.value}",
        *(f"  why: {reason}" for reason in profile.reasons),
        *(f"  warning: {warning}" for warning in profile.warnings),
        f"weights:        MODEL_STORAGE_PATH={report.model_storage_path}",
        *(_weight_line(w) for w in report.weights),
        "quality=fast:   "
        + (
            "available"
            if report.fast_unavailable is None
            else f"unavailable, {report.fast_unavailable}"
        ),
        *([_weight_line(report.fast_lora)] if report.fast_lora is not None else []),
        "two speakers:   "
        + (
            "available"
            if report.two_speakers_unavailable is None
            else f"unavailable, {report.two_speakers_unavailable}"
        ),
        _weight_line(report.multi_weights),
    ]
    if report.problems:
        missing = sum(weight.size_bytes is None for weight in report.weights)
        fetch = [f"{missing} weight files marked MISSING above: {DOWNLOAD_HINT}"] if missing else []
        lines += ["cannot start:", *(f"  - {problem}" for problem in report.setup_problems + fetch)]
    else:
        lines.append("ready: the agent can start with ENGINE=infinitetalk")
    return "\n".join(lines)


def probe_main(env: Mapping[str, str], *, as_json: bool, out: TextIO) -> int:
    """`avatar-agent probe`: 0 when the agent could start, 1 when not, 2 on bad settings."""
    try:
        settings = InfiniteTalkSettings.from_env(env)
    except SettingsError as exc:
        print(f"avatar-agent: {exc}", file=out)
        return 2
    report = build_report(settings, measure_host())
    print(report.model_dump_json(indent=2) if as_json else format_report(report), file=out)
    return 1 if report.problems else 0


def _weight_line(weight: WeightReport) -> str:
    found = "ok     " if weight.size_bytes is not None else "MISSING"
    return f"  {found} {_size(weight.size_bytes):>9}  {weight.what}: {weight.path}"


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit, scale in (("GiB", GIB), ("MiB", 1024**2)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1024:.1f} KiB"


if __name__ == "__main__":  # pragma: no cover - run by measure_in_subprocess
    print(json.dumps(measure_host().model_dump()))
