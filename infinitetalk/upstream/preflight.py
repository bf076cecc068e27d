"""Refuse to start an InfiniteTalk agent that could not run a job, saying exactly why.

A missing checkout or weight file would otherwise surface minutes later, deep in a model
load or as the first job's failure; here it stops the agent before it pulls anything.
"""

import os

from infinitetalk.settings import InfiniteTalkSettings, Mode, Quantization
from infinitetalk.upstream import pinned
from infinitetalk.upstream.profiles import ResolvedProfile
from infinitetalk.upstream.weights import (
    WeightStatus,
    check_weights,
    fast_lora_file,
    multi_weights_file,
    required_weights,
)

DOWNLOAD_HINT = "fetch them with scripts/download_weights.sh (see docs/DEPLOY-RUNPOD.md)"


class EngineStartError(RuntimeError):
    """The engine cannot run jobs; every reason is listed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("InfiniteTalk cannot start:\n" + "\n".join(f"  - {p}" for p in problems))


def startup_problems(settings: InfiniteTalkSettings, profile: ResolvedProfile) -> list[str]:
    """Everything missing for this configuration; empty when a job can run."""
    statuses = check_weights(required_weights(settings, profile.quantization))
    return setup_problems(settings) + weight_problems(settings, statuses)


def setup_problems(settings: InfiniteTalkSettings) -> list[str]:
    """What is wrong besides the weights: the upstream checkout and its interpreter."""
    problems = []
    checkout = settings.upstream_dir
    if not (checkout / pinned.SCRIPT).is_file():
        problems.append(
            f"INFINITETALK_DIR={checkout} has no {pinned.SCRIPT}: clone "
            f"{pinned.UPSTREAM_REPOSITORY} at {pinned.UPSTREAM_COMMIT} there "
            "(the Docker image has it at /opt/InfiniteTalk)"
        )
    elif settings.mode is Mode.RESIDENT and not (checkout / "wan" / "__init__.py").is_file():
        problems.append(f"INFINITETALK_DIR={checkout} has no wan package (resident mode needs it)")
    if settings.mode is Mode.SUBPROCESS and not (
        settings.python.is_file() and os.access(settings.python, os.X_OK)
    ):
        problems.append(f"INFINITETALK_PYTHON={settings.python} is not an executable file")
    return problems


def weight_problems(settings: InfiniteTalkSettings, statuses: list[WeightStatus]) -> list[str]:
    """One line per missing file, then where to get them; empty when all are present."""
    missing = [status.file for status in statuses if not status.present]
    if not missing:
        return []
    return [f"missing {file.what}: {file.path}" for file in missing] + [
        f"MODEL_STORAGE_PATH={settings.model_storage_path}: {DOWNLOAD_HINT}"
    ]


def fast_unavailable(settings: InfiniteTalkSettings, quantization: Quantization) -> str | None:
    """Why this agent cannot serve `quality=fast`, naming the setting; None when it can.

    Not a start-up problem: an agent without the fast LoRA still serves standard jobs.
    """
    lora = fast_lora_file(settings)
    if lora is None:
        return "this agent has no distilled LoRA (INFINITETALK_FAST_LORA is blank)"
    if not check_weights([lora])[0].present:
        return (
            f"this agent has no distilled LoRA (INFINITETALK_FAST_LORA={settings.fast_lora} "
            "is missing)"
        )
    if quantization in (Quantization.INT8, Quantization.FP8):
        return (
            f"this agent runs the {quantization.value} quantised model, on which upstream "
            f"ignores LoRA (INFINITETALK_QUANT={settings.quantization.value})"
        )
    return None


def two_speakers_unavailable(
    settings: InfiniteTalkSettings, quantization: Quantization
) -> str | None:
    """Why this agent cannot take two-speaker jobs, naming what to fetch; None when it can.

    Not a start-up problem: without the multi weights the agent still makes one speaker.
    """
    if quantization in (Quantization.INT8, Quantization.FP8):
        return (
            f"this agent runs the {quantization.value} quantised model, which upstream has "
            f"only for one speaker (INFINITETALK_QUANT={settings.quantization.value})"
        )
    if not check_weights([multi_weights_file(settings)])[0].present:
        return (
            f"the multi weights ({settings.multi_weights}) are missing: "
            "scripts/download_weights.sh fetches them"
        )
    return None
