-- Migration number: 0006   Quotas and fair queueing: one token bucket per owner (tokens left
-- at updated_at, Unix seconds), and indexes for an owner's unfinished jobs and the queue's
-- order by enqueue time. A pending job whose enqueued_at is NULL is held back by admission.
CREATE TABLE IF NOT EXISTS rate_buckets (
    owner TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_owner_status ON jobs (owner, status, enqueued_at);
CREATE INDEX IF NOT EXISTS jobs_status_enqueued ON jobs (status, enqueued_at);
