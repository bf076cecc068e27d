"""Webhooks: the key's signing secret and its rotation, a job's delivery log and redelivery
(docs/API.md#webhooks)."""

from typing import Any

from litestar import Request, Router, get, post
from litestar.params import FromPath

from contracts import ErrorCode
from contracts.webhooks import WebhookDeliveries, WebhookEventView, WebhookSecret
from edge_worker.http.dependencies import CLIENT_MIDDLEWARE, client_owner, client_use_cases
from edge_worker.http.openapi import documented


@get(
    "/webhooks/secret",
    **documented("getWebhookSecret", []),
    summary="The secret that signs this key's webhooks",
    description="`whsec_` + base64 of the HMAC-SHA256 key (Standard Webhooks), made on first "
    "use. Verify each request's `webhook-signature` with it, e.g. with the `standardwebhooks` "
    "package.",
)
async def webhook_secret(request: Request[Any, Any, Any]) -> WebhookSecret:
    return await client_use_cases(request).webhooks.secret(client_owner(request))


@post(
    "/webhooks/secret/rotate",
    status_code=200,
    **documented("rotateWebhookSecret", [ErrorCode.CONFLICT]),
    summary="Replace this key's webhook secret",
    description="Returns the new secret. For WEBHOOK_SECRET_GRACE_SECONDS (24 h by default) "
    "each request carries two signatures, by the new and the old secret, so receivers can "
    "switch without missing a webhook.",
)
async def rotate_webhook_secret(request: Request[Any, Any, Any]) -> WebhookSecret:
    return await client_use_cases(request).webhooks.rotate(client_owner(request))


@get(
    "/jobs/{job_id:str}/webhooks",
    **documented("listWebhookDeliveries", [ErrorCode.JOB_NOT_FOUND]),
    summary="The job's webhook events and every delivery attempt",
)
async def webhook_deliveries(
    job_id: FromPath[str], request: Request[Any, Any, Any]
) -> WebhookDeliveries:
    webhooks = client_use_cases(request).webhooks
    return await webhooks.deliveries(client_owner(request), job_id)


@post(
    "/jobs/{job_id:str}/webhooks/redeliver",
    status_code=200,
    **documented("redeliverWebhook", [ErrorCode.JOB_NOT_FOUND, ErrorCode.CONFLICT]),
    summary="Send the job's last webhook event again",
    description="The same event (same `webhook-id` and body, a fresh timestamp and signature) "
    "as a new series of attempts with the usual retries. 409 `CONFLICT` when the job has no "
    "webhook, or no event yet.",
)
async def redeliver_webhook(
    job_id: FromPath[str], request: Request[Any, Any, Any]
) -> WebhookEventView:
    webhooks = client_use_cases(request).webhooks
    return await webhooks.redeliver(client_owner(request), job_id)


webhooks_router = Router(
    path="/",
    route_handlers=[
        webhook_secret,
        rotate_webhook_secret,
        webhook_deliveries,
        redeliver_webhook,
    ],
    middleware=CLIENT_MIDDLEWARE,
)
