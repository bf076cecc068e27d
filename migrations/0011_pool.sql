-- Migration number: 0011   The RunPod pool controller (edge_worker/domain/pool.py): the pods it
-- started, the agents seen on each pod (heartbeats carry RUNPOD_POD_ID), and one row of
-- controller state: the compare-and-set lease that lets one sweep act at a time, the last
-- decision and its reason, and counters of RunPod API errors and of stopped pods.
CREATE TABLE IF NOT EXISTS pool_pods (
    pod_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    first_heartbeat_at TEXT,
    heartbeat_at TEXT,
    busy_at TEXT,
    drain_requested_at TEXT,
    drain_acked_at TEXT,
    stopped_at TEXT,
    stop_reason TEXT
);
CREATE INDEX IF NOT EXISTS pool_pods_stopped ON pool_pods (stopped_at);
CREATE TABLE IF NOT EXISTS pool_agents (
    agent_id TEXT PRIMARY KEY,
    pod_id TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pool_agents_pod ON pool_agents (pod_id);
CREATE TABLE IF NOT EXISTS pool_state (
    id INTEGER PRIMARY KEY,
    lease_holder TEXT,
    lease_until TEXT,
    decided_at TEXT,
    decision TEXT,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    server_errors INTEGER NOT NULL DEFAULT 0,
    unreachable INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    pods_started INTEGER NOT NULL DEFAULT 0,
    pods_stopped INTEGER NOT NULL DEFAULT 0,
    unresponsive_stopped INTEGER NOT NULL DEFAULT 0
);
-- A pod's jobs are those of the agents seen on it.
CREATE INDEX IF NOT EXISTS jobs_agent ON jobs (agent_id, status);
