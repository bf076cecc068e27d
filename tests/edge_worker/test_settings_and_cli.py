"""Start-up: settings validation and the `avatar-edge` command."""

import asyncio
import logging
from pathlib import Path

import pytest

from contracts.settings import SettingsError
from edge_worker import local
from edge_worker.settings import EdgeSettings
from tests.edge_worker.conftest import ENV


def test_settings_from_env_with_defaults() -> None:
    settings = EdgeSettings.from_env({**ENV, "MAX_ATTEMPTS": "5", "VIDEO_RETENTION_HOURS": "1.5"})
    assert settings.api_keys == tuple(ENV["API_KEYS"].split(","))
    assert settings.max_attempts == 5
    assert settings.video_retention_hours == 1.5
    assert settings.heartbeat_timeout_seconds == 120
    assert settings.signing_secret == ENV["SIGNING_SECRET"]
    assert settings.max_request_bytes > settings.max_image_bytes + settings.max_audio_bytes


def test_single_api_key_name_is_accepted() -> None:
    env = {**ENV, "API_KEY": "single-key-0123456789"}
    del env["API_KEYS"]
    assert EdgeSettings.from_env(env).api_keys == ("single-key-0123456789",)


def test_settings_error_names_every_problem() -> None:
    with pytest.raises(SettingsError) as err:
        EdgeSettings.from_env({"MAX_ATTEMPTS": "zero", "API_KEYS": "short"})
    message = str(err.value)
    for name in ("API_KEYS", "AGENT_TOKEN", "API_KEY_PEPPER", "SIGNING_SECRET", "MAX_ATTEMPTS"):
        assert name in message


def test_log_level_is_one_of_the_levels_in_any_case() -> None:
    assert EdgeSettings.from_env({**ENV, "LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(SettingsError) as err:
        EdgeSettings.from_env({**ENV, "LOG_LEVEL": "loud"})
    assert err.value.problems == {
        "LOG_LEVEL": "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    }


def test_settings_built_in_code_need_their_own_signing_secret() -> None:
    keys = ("k" * 16, "l" * 16)
    settings = EdgeSettings(
        api_keys=keys, agent_token="t" * 16, api_key_pepper="p" * 16, signing_secret="s" * 16
    )
    assert settings.api_keys == keys and settings.signing_secret == "s" * 16
    assert "s" * 16 not in repr(settings)
    without = {k: v for k, v in ENV.items() if k != "SIGNING_SECRET"}
    with pytest.raises(SettingsError, match="SIGNING_SECRET"):
        EdgeSettings.from_env(without)
    with pytest.raises(SettingsError, match="SIGNING_SECRET"):
        EdgeSettings.from_env({**ENV, "SIGNING_SECRET": "short"})


def test_the_local_runtime_needs_a_queue_token() -> None:
    env = {k: v for k, v in ENV.items() if k != "CF_API_TOKEN"}
    assert EdgeSettings.from_env(env).cf_api_token is None
    with pytest.raises(SettingsError, match="CF_API_TOKEN"):
        local.local_settings(env, "127.0.0.1", 8787)


def test_local_settings_public_url() -> None:
    assert local.local_settings(ENV, "10.0.0.2", 9000).public_url == "http://10.0.0.2:9000"
    assert (
        local.local_settings({**ENV, "PUBLIC_URL": "https://x.example"}, "h", 1).public_url
        == "https://x.example"
    )


def test_cli_refuses_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert local.main(["serve"], env={}) == 2
    assert "API_KEYS" in capsys.readouterr().err


def test_cli_serves_with_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    served: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server: served.append(server.config))
    env = {**ENV, "HTTP_KEEP_ALIVE_SECONDS": "7", "HTTP_MAX_CONNECTIONS": "50"}
    code = local.main(["serve", "--port", "9999", "--data-dir", str(tmp_path)], env=env)
    assert code == 0
    [config] = served
    assert (config.port, config.timeout_keep_alive, config.limit_concurrency) == (9999, 7, 50)
    assert config.h11_max_incomplete_event_size == 16 * 1024
    assert (tmp_path / "jobs.sqlite3").exists()
    logging.getLogger().handlers.clear()


def test_lost_compare_and_swap_races_end_in_conflict(runtime: local.LocalRuntime) -> None:
    from contracts import ClaimRequest, Resolution
    from edge_worker.domain.problems import Problem

    agent_protocol = runtime.use_cases.agent_protocol
    store = runtime.store

    async def scenario() -> None:
        from edge_worker.clock import SystemClock
        from edge_worker.domain import jobs

        job = jobs.new_job(
            job_id="race",
            owner="o",
            prompt="p",
            resolution=Resolution.P480,
            seed=None,
            image_key="inputs/race/image.png",
            audio_key="inputs/race/audio.wav",
            now=SystemClock().now(),
        )
        await store.insert(job)

        async def never(job: jobs.Job, expected_version: int) -> bool:
            return False

        store.replace = never  # type: ignore[method-assign]
        with pytest.raises(Problem) as err:
            await agent_protocol.claim("race", ClaimRequest(agent_id="a"))
        assert err.value.code.value == "CONFLICT"

    asyncio.run(scenario())


def test_every_edge_secret_is_fed_to_the_log_redactor() -> None:
    settings = EdgeSettings.from_env({**ENV, "CF_API_TOKEN": "queue-token-0123456789"})
    assert set(settings.secrets()) >= {
        *settings.api_keys,
        ENV["AGENT_TOKEN"],
        ENV["API_KEY_PEPPER"],
        ENV["SIGNING_SECRET"],
        "queue-token-0123456789",
    }


def test_stored_keys_alone_need_the_admin_token_and_no_bootstrap_keys() -> None:
    without_keys = {k: v for k, v in ENV.items() if k != "API_KEYS"}
    settings = EdgeSettings.from_env({**without_keys, "ADMIN_TOKEN": "admin-token-0123456789"})
    assert settings.api_keys == ()
    with pytest.raises(SettingsError) as err:
        EdgeSettings.from_env(without_keys)
    assert err.value.problems == {
        "ADMIN_TOKEN": "set API_KEYS (bootstrap client keys), or ADMIN_TOKEN to create stored "
        "keys with avatar-admin"
    }
