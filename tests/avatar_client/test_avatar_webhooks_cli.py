"""`avatar webhooks` against the fake API: the signing secret and its rotation, a job's
deliveries as a table, a redelivery, each with `--json`."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.webhooks import (
    DeliveryAttempt,
    DeliveryState,
    WebhookDeliveries,
    WebhookEventType,
    WebhookEventView,
)
from tests.avatar_client.avatar_fakes import JOB_ID, FakeApi, envelope
from tests.avatar_client.test_avatar_cli import Run, help_text

SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY="
ROTATED = "whsec_" + "cm90YXRlZC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5YWJjZGU="
T0 = datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
HOOK = "https://hooks.example/avatar"
DELIVERIES = WebhookDeliveries(
    job_id=JOB_ID,
    webhook_url=HOOK,
    webhook_events=[WebhookEventType.PROCESSING, WebhookEventType.COMPLETED],
    events=[
        WebhookEventView(
            webhook_id="msg_a",
            type=WebhookEventType.PROCESSING,
            created_at=T0,
            url=HOOK,
            state=DeliveryState.DELIVERED,
            attempts=[
                DeliveryAttempt(
                    attempt=1,
                    attempted_at=T0,
                    status_code=503,
                    latency_ms=41,
                    error="HTTP 503",
                    next_retry_at=T0 + timedelta(seconds=5),
                ),
                DeliveryAttempt(
                    attempt=2, attempted_at=T0 + timedelta(seconds=5), status_code=204, latency_ms=7
                ),
            ],
        ),
        WebhookEventView(
            webhook_id="msg_b",
            type=WebhookEventType.COMPLETED,
            created_at=T0 + timedelta(minutes=1),
            url=HOOK,
            state=DeliveryState.RETRYING,
            attempts=[
                DeliveryAttempt(
                    attempt=1,
                    attempted_at=T0 + timedelta(minutes=1),
                    latency_ms=10000,
                    error="timed out",
                    next_retry_at=T0 + timedelta(minutes=1, seconds=5),
                )
            ],
        ),
        WebhookEventView(
            webhook_id="msg_c",
            type=WebhookEventType.COMPLETED,
            created_at=T0 + timedelta(minutes=2),
            url=HOOK,
            state=DeliveryState.PENDING,
            attempts=[],
        ),
    ],
)


def webhook_api() -> FakeApi:
    """The fake API with the webhook routes, answering the contract's models."""
    api = FakeApi()

    def secrets(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/webhooks/secret/rotate" and request.method == "POST":
            return httpx.Response(200, json={"secret": ROTATED})
        assert (request.method, request.url.path) == ("GET", "/webhooks/secret")
        return httpx.Response(200, json={"secret": SECRET})

    def deliveries(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/redeliver") and request.method == "POST":
            return httpx.Response(200, json=DELIVERIES.events[1].model_dump(mode="json"))
        assert request.method == "GET"
        return httpx.Response(200, json=DELIVERIES.model_dump(mode="json"))

    api.overrides["/webhooks/secret"] = secrets
    api.overrides[f"/jobs/{JOB_ID}/webhooks"] = deliveries
    quiet = WebhookDeliveries(job_id="job-quiet", webhook_url=None, webhook_events=[], events=[])
    api.overrides["/jobs/job-quiet/webhooks"] = lambda _: httpx.Response(
        200, json=quiet.model_dump(mode="json")
    )
    api.overrides["/jobs/job-without-hook/webhooks"] = lambda _: envelope(
        409, "CONFLICT", "job job-without-hook was created without a webhook_url"
    )
    return api


def test_the_secret_and_its_rotation_print_the_secret() -> None:
    api = webhook_api()
    assert Run(api, ["webhooks", "secret"]).stdout.getvalue() == f"{SECRET}\n"
    assert Run(api, ["webhooks", "rotate"]).stdout.getvalue() == f"{ROTATED}\n"
    assert Run(api, ["webhooks", "secret", "--json"]).json == {"secret": SECRET}
    assert Run(api, ["webhooks", "rotate", "--json"]).json == {"secret": ROTATED}
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/webhooks/secret"),
        ("POST", "/webhooks/secret/rotate"),
    ] * 2


def test_deliveries_are_a_table_of_each_events_last_attempt() -> None:
    run = Run(webhook_api(), ["webhooks", "deliveries", JOB_ID])
    assert run.code == 0, run.stderr.getvalue()
    assert run.stdout.getvalue().splitlines() == [
        f"webhook {HOOK} for job.processing, job.completed",
        "EVENT  TYPE            ATTEMPTS  LAST STATUS  LATENCY  NEXT RETRY            STATE",
        "msg_a  job.processing  2         204          7ms      -                     delivered",
        "msg_b  job.completed   1         no-answer    10000ms  2026-05-01T12:01:05Z  retrying",
        "msg_c  job.completed   0         -            -        -                     pending",
    ]
    as_json = Run(webhook_api(), ["webhooks", "deliveries", JOB_ID, "--json"]).json
    assert WebhookDeliveries.model_validate(as_json) == DELIVERIES
    quiet = Run(webhook_api(), ["webhooks", "deliveries", "job-quiet"]).stdout.getvalue()
    assert quiet.splitlines() == ["job job-quiet has no webhook", "no events yet"]


def test_redeliver_names_the_event_sent_again() -> None:
    api = webhook_api()
    run = Run(api, ["webhooks", "redeliver", JOB_ID])
    assert run.stdout.getvalue() == f"msg_b  job.completed  queued again for {HOOK}\n"
    assert (api.requests[-1].method, api.requests[-1].url.path) == (
        "POST",
        f"/jobs/{JOB_ID}/webhooks/redeliver",
    )
    assert Run(api, ["webhooks", "redeliver", JOB_ID, "--json"]).json["webhook_id"] == ("msg_b")
    refused = Run(api, ["webhooks", "redeliver", "job-without-hook"])
    assert refused.code == 1
    assert refused.stderr.getvalue() == (
        "error: CONFLICT: job job-without-hook was created without a webhook_url\n"
    )


def test_each_action_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for action, example in (
        ("secret", "avatar webhooks secret"),
        ("rotate", "avatar webhooks rotate"),
        ("deliveries", "avatar webhooks deliveries JOB_ID"),
        ("redeliver", "avatar webhooks redeliver JOB_ID"),
    ):
        text = help_text(capsys, "webhooks", action)
        assert f"example: {example}" in text and "--json" in text
