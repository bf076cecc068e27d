"""The webhook rules as plain Python: signatures (checked by the `standardwebhooks`
reference), the retry schedule, the SSRF table, and which job changes are events."""

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from contracts import JobStatus, Resolution, Stage
from contracts.webhooks import DeliveryState, WebhookEventType
from edge_worker.domain import jobs, webhook_signing
from edge_worker.domain.problems import Problem
from edge_worker.domain.webhook_deliveries import (
    AttemptResult,
    SigningSecrets,
    WebhookEvent,
    after_attempt,
    redelivered,
)
from edge_worker.domain.webhook_events import event_for, progress_due
from edge_worker.domain.webhook_retries import Outcome, RetryPolicy, outcome
from edge_worker.domain.webhook_targets import (
    forbidden_addresses,
    is_forbidden_address,
    parse_target,
    private_host_reason,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_signatures_verify_with_the_reference_implementation() -> None:
    secret = webhook_signing.new_secret()
    body = b'{"type":"job.completed"}'
    timestamp = int(datetime.now(UTC).timestamp())
    headers = webhook_signing.headers([secret], "msg_1", timestamp, body)
    assert Webhook(secret).verify(body, headers) == {"type": "job.completed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    reference = Webhook(secret).sign("msg_1", datetime.fromtimestamp(timestamp, UTC), body.decode())
    assert headers["webhook-signature"] == reference


def test_two_secrets_give_two_signatures_each_verifiable() -> None:
    old, new = webhook_signing.new_secret(), webhook_signing.new_secret()
    secrets = SigningSecrets("owner", old, NOW).rotated(new, NOW, timedelta(hours=1))
    assert secrets.signing(NOW + timedelta(minutes=59)) == [new, old]
    assert secrets.signing(NOW + timedelta(hours=1)) == [new]
    body, timestamp = b"{}", int(datetime.now(UTC).timestamp())
    headers = webhook_signing.headers(secrets.signing(NOW), "msg_2", timestamp, body)
    for key in (old, new):
        Webhook(key).verify(body, headers)
    with pytest.raises(ValueError, match="whsec_"):
        webhook_signing.secret_key("nope")


def test_the_default_schedule_doubles_to_five_minutes_for_an_hour() -> None:
    policy = RetryPolicy()
    delays, first, at, attempts = [], NOW, NOW, 0
    while True:
        attempts += 1
        delay = policy.next_delay(attempts, first, at)
        if delay is None:
            break
        delays.append(delay)
        at += timedelta(seconds=delay)
    assert delays[:8] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert attempts >= 8 and at - first >= timedelta(hours=1)
    assert (attempts, at - first) == (18, timedelta(seconds=3615))


def test_outcomes() -> None:
    assert [outcome(code) for code in (200, 204, 299, 410, 500, 301, 404, None)] == [
        Outcome.DELIVERED,
        Outcome.DELIVERED,
        Outcome.DELIVERED,
        Outcome.GONE,
        *[Outcome.RETRY] * 4,
    ]


def test_attempts_move_the_event_through_its_states() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=2, min_attempts=2, min_span=timedelta(0))
    event = WebhookEvent("msg", "job", "owner", WebhookEventType.COMPLETED, "u", "{}", NOW)
    event, attempt, delay = after_attempt(event, AttemptResult(503, None, 7), NOW, policy)
    assert (event.state, attempt.attempt, delay) == (DeliveryState.RETRYING, 1, 1)
    assert attempt.next_retry_at == NOW + timedelta(seconds=1)
    assert attempt.error == "the receiver answered 503"
    event, attempt, delay = after_attempt(event, AttemptResult(None, "timeout", 9), NOW, policy)
    assert (event.state, attempt.attempt, delay, attempt.error) == (
        DeliveryState.FAILED,
        2,
        None,
        "timeout",
    )
    again = redelivered(event)
    assert (again.state, again.series, again.series_attempts, again.attempts) == (
        DeliveryState.PENDING,
        1,
        0,
        2,
    )
    again, attempt, delay = after_attempt(again, AttemptResult(200, None, 3), NOW, policy)
    assert (again.state, attempt.attempt, delay, attempt.error) == (
        DeliveryState.DELIVERED,
        3,
        None,
        None,
    )


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "fec0::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",
        "64:ff9b::a00:1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    assert private_host_reason(host.strip("[]")) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(address))
    assert private_host_reason(address) is None


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "api.localhost",
        "printer.local",
        "db.internal",
        "nas.home.arpa",
        "127.1",
        "2130706433",
        "0x7f000001",
        "ip6-localhost",
    ],
)
def test_local_names_and_numeric_hosts_are_refused(host: str) -> None:
    assert private_host_reason(host) is not None


def test_names_are_judged_again_by_their_addresses() -> None:
    assert private_host_reason("hooks.example.com") is None
    assert forbidden_addresses(["93.184.215.14", "10.0.0.5", "::1"]) == ["10.0.0.5", "::1"]


def test_a_target_is_optional_and_its_events_default_to_the_endings() -> None:
    assert parse_target(None, None) is None and parse_target("  ", None) is None
    target = parse_target("https://example.com/h", None)
    assert target is not None and target.events == {
        WebhookEventType.COMPLETED,
        WebhookEventType.FAILED,
        WebhookEventType.CANCELLED,
    }
    with pytest.raises(Problem, match="at least one"):
        parse_target("https://example.com/h", [])
    with pytest.raises(Problem, match="fragment"):
        parse_target("https://example.com/h#x", None)
    long = "https://example.com/" + "a" * 2048
    with pytest.raises(Problem, match="at most"):
        parse_target(long, None)


def job(**changes: Any) -> jobs.Job:
    made = jobs.new_job(
        job_id="j",
        owner="o",
        prompt="p",
        resolution=Resolution.P480,
        seed=None,
        image_key="i",
        audio_key="a",
        now=NOW,
    )
    return replace(made, **changes)


def test_which_changes_are_events() -> None:
    pending = job()
    processing = job(status=JobStatus.PROCESSING, stage=Stage.DOWNLOADING)
    moved = replace(processing, progress=10.0, stage=Stage.GENERATING)
    assert event_for(pending, processing) is WebhookEventType.PROCESSING
    assert event_for(processing, moved) is WebhookEventType.PROGRESS
    assert event_for(moved, moved) is None  # a heartbeat that changed nothing
    assert event_for(processing, pending) is None  # back to the queue for a retry
    for status, event in (
        (JobStatus.COMPLETED, WebhookEventType.COMPLETED),
        (JobStatus.FAILED, WebhookEventType.FAILED),
        (JobStatus.CANCELLED, WebhookEventType.CANCELLED),
    ):
        assert event_for(processing, replace(processing, status=status)) is event
    assert event_for(pending, replace(pending, status=JobStatus.CANCELLED)) is not None
    completed = replace(processing, status=JobStatus.COMPLETED)
    assert event_for(completed, replace(completed, status=JobStatus.EXPIRED)) is None
    assert event_for(pending, replace(pending, enqueued_at=NOW)) is None


def test_progress_is_throttled() -> None:
    every = timedelta(seconds=5)
    assert progress_due(None, NOW, every)
    assert not progress_due(NOW, NOW + timedelta(seconds=4.9), every)
    assert progress_due(NOW, NOW + every, every)
