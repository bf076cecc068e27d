-- Migration number: 0008   Webhooks: each job's URL and events (events comma-separated), each
-- key's signing secret (the previous one kept for a grace window after a rotation), every
-- event sent and every attempt to deliver it (GET /jobs/{id}/webhooks).
ALTER TABLE jobs ADD COLUMN webhook_url TEXT;
ALTER TABLE jobs ADD COLUMN webhook_events TEXT;
CREATE TABLE webhook_secrets (
    owner TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until TEXT,
    created_at TEXT NOT NULL,
    rotated_at TEXT
);
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    series INTEGER NOT NULL DEFAULT 0,
    series_attempts INTEGER NOT NULL DEFAULT 0,
    series_started_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_events_by_job_type ON webhook_events (job_id, type, created_at);
CREATE TABLE webhook_attempts (
    webhook_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    status_code INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    next_retry_at TEXT,
    PRIMARY KEY (webhook_id, attempt)
);
