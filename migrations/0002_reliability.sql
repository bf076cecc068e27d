-- Migration number: 0002   Re-enqueue bookkeeping, input cleanup, idempotency keys.
ALTER TABLE jobs ADD COLUMN enqueued_at TEXT;
ALTER TABLE jobs ADD COLUMN inputs_deleted INTEGER NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS jobs_status_heartbeat ON jobs (status, heartbeat_at);
CREATE INDEX IF NOT EXISTS jobs_status_expires ON jobs (status, expires_at);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (owner, idempotency_key)
);
CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency_keys (expires_at);
