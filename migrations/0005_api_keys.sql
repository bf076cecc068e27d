-- Migration number: 0005   API keys as data: stored hashed (HMAC-SHA256 under API_KEY_PEPPER),
-- never the key itself; `owner` outlives rotations. The limits are stored for the quota slice.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    expires_at TEXT,
    revoked_at TEXT,
    rate_limit_per_minute INTEGER,
    max_active_jobs INTEGER,
    daily_video_seconds REAL
);
CREATE INDEX api_keys_by_created ON api_keys (created_at, id);
