"""`EdgeContext`: what every use case runs against, built once per runtime (local or Worker)."""

from dataclasses import dataclass

from edge_worker.ports import (
    BlobStore,
    BucketStore,
    Clock,
    JobQueue,
    JobStore,
    KeyStore,
    PodProvider,
    PoolStore,
    WebhookQueue,
    WebhookSender,
    WebhookStore,
)
from edge_worker.settings import EdgeSettings


@dataclass(frozen=True)
class EdgeContext:
    settings: EdgeSettings
    store: JobStore
    blobs: BlobStore
    queue: JobQueue
    clock: Clock
    keys: KeyStore
    buckets: BucketStore
    webhooks: WebhookStore
    webhook_queue: WebhookQueue
    webhook_sender: WebhookSender
    pool: PoolStore
    pods: PodProvider | None  # None: the pool controller is off
