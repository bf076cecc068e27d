"""`AgentSettings.from_env`: defaults, and one error that names every bad variable."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from contracts.settings import SettingsError
from gpu_agent.settings import DEFAULT_CF_API_BASE, AgentSettings

REQUIRED = {
    "EDGE_URL": "http://127.0.0.1:8787/",
    "AGENT_TOKEN": "agent-secret",
    "CF_ACCOUNT_ID": "local",
    "CF_API_TOKEN": "cf-secret",
}


def test_required_values_and_defaults() -> None:
    settings = AgentSettings.from_env(REQUIRED)
    assert settings.edge_url == "http://127.0.0.1:8787"  # trailing slash dropped
    assert settings.agent_token.get_secret_value() == "agent-secret"
    assert settings.cf_api_base == DEFAULT_CF_API_BASE
    assert settings.cf_account_id == "local"
    assert settings.cf_queue_id == "avatar-jobs"
    assert settings.engine == "preview"
    assert settings.visibility_timeout_seconds == 60
    assert settings.shutdown_grace_seconds == 60.0
    assert settings.work_dir == Path(tempfile.gettempdir())
    assert settings.log_level == "INFO"
    assert (settings.max_audio_seconds, settings.max_image_pixels) == (600, 16_777_216)
    assert settings.agent_id  # hostname-pid


def test_every_variable_is_read() -> None:
    env = {
        **REQUIRED,
        "CF_API_BASE": "http://127.0.0.1:8787/client/v4/",
        "CF_QUEUE_ID": "q2",
        "ENGINE": "InfiniteTalk",
        "AGENT_ID": "pod-7",
        "VISIBILITY_TIMEOUT_SECONDS": " 120 ",
        "SHUTDOWN_GRACE_SECONDS": "7.5",
        "IDLE_POLL_MAX_SECONDS": "0.5",
        "WORK_DIR": "/scratch",
        "LOG_LEVEL": "debug",
        "MAX_AUDIO_SECONDS": "3600",
        "MAX_IMAGE_PIXELS": "1000000",
    }
    settings = AgentSettings.from_env(env)
    assert settings.cf_api_base == "http://127.0.0.1:8787/client/v4"
    assert settings.cf_queue_id == "q2"
    assert settings.engine == "infinitetalk"
    assert settings.agent_id == "pod-7"
    assert settings.visibility_timeout_seconds == 120
    assert settings.shutdown_grace_seconds == 7.5
    assert settings.idle_poll_max_seconds == 0.5
    assert settings.work_dir == Path("/scratch")
    assert settings.log_level == "DEBUG"
    assert (settings.max_audio_seconds, settings.max_image_pixels) == (3600, 1_000_000)


def test_missing_variables_are_all_named() -> None:
    with pytest.raises(SettingsError) as caught:
        AgentSettings.from_env({"AGENT_TOKEN": "  "})  # blank counts as missing
    assert set(caught.value.problems) == {
        "EDGE_URL",
        "AGENT_TOKEN",
        "CF_ACCOUNT_ID",
        "CF_API_TOKEN",
    }
    for name in caught.value.problems:
        assert name in str(caught.value)


URL = "must be an http:// or https:// URL"
VISIBILITY = "must be an integer from 1 to 43200"
GRACE = "must be a number from 0 to 3600"
MALFORMED = [
    ("EDGE_URL", "edge.example.com", URL),
    ("CF_API_BASE", "ftp://x", URL),
    ("ENGINE", "sora", "must be one of preview, infinitetalk"),
    ("VISIBILITY_TIMEOUT_SECONDS", "soon", VISIBILITY),
    ("VISIBILITY_TIMEOUT_SECONDS", "0", VISIBILITY),
    ("VISIBILITY_TIMEOUT_SECONDS", "-5", VISIBILITY),
    ("VISIBILITY_TIMEOUT_SECONDS", "43201", VISIBILITY),
    ("SHUTDOWN_GRACE_SECONDS", "a minute", GRACE),
    ("SHUTDOWN_GRACE_SECONDS", "-1", GRACE),
    ("SHUTDOWN_GRACE_SECONDS", "3601", GRACE),
    ("SHUTDOWN_GRACE_SECONDS", "nan", GRACE),
    ("SHUTDOWN_GRACE_SECONDS", "inf", GRACE),
    ("LOG_LEVEL", "loud", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("AGENT_ID", "a" * 201, "must be at most 200 characters"),
]


@pytest.mark.parametrize(("name", "value", "reason"), MALFORMED)
def test_a_malformed_variable_is_named_with_what_it_must_be(
    name: str, value: str, reason: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        AgentSettings.from_env({**REQUIRED, name: value})
    assert caught.value.problems == {name: reason}


def test_malformed_variables_are_all_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        AgentSettings.from_env({**REQUIRED, **{name: value for name, value, _ in MALFORMED}})
    assert caught.value.problems == {name: reason for name, _, reason in MALFORMED}


def test_shutdown_grace_may_be_zero() -> None:
    settings = AgentSettings.from_env({**REQUIRED, "SHUTDOWN_GRACE_SECONDS": "0"})
    assert settings.shutdown_grace_seconds == 0.0  # hand the job back at once


def test_tokens_never_show_in_repr_or_errors() -> None:
    settings = AgentSettings.from_env(REQUIRED)
    assert "agent-secret" not in repr(settings) and "cf-secret" not in repr(settings)
    assert settings.secrets() == ["agent-secret", "cf-secret"]
    with pytest.raises(SettingsError) as caught:
        AgentSettings.from_env({**REQUIRED, "EDGE_URL": "nope", "LOG_LEVEL": "x"})
    assert "agent-secret" not in str(caught.value)
