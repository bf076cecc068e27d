-- Migration number: 0001   Jobs and their state (D1-compatible SQLite only).
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    prompt TEXT NOT NULL,
    resolution TEXT NOT NULL,
    seed INTEGER,
    image_key TEXT NOT NULL,
    audio_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    expires_at TEXT,
    heartbeat_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    claim_token TEXT,
    agent_id TEXT,
    eta_seconds REAL,
    result_key TEXT,
    result_json TEXT,
    version INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created_at);
