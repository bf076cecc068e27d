-- Migration number: 0009   Segment fan-out: a job asked for with `parallel` is split by an
-- agent into segments, each a child row of this table (task 'segment'), joined by one more
-- child (task 'stitch'). The unique index makes a second planner or a second last segment
-- unable to add a duplicate child; a stitch is stored at index segment_count. segment_plan
-- is the registered plan (JSON) between POST .../segments and .../segments/commit.
ALTER TABLE jobs ADD COLUMN parallel TEXT NOT NULL DEFAULT 'off';
ALTER TABLE jobs ADD COLUMN parent_id TEXT;
ALTER TABLE jobs ADD COLUMN task TEXT NOT NULL DEFAULT 'job';
ALTER TABLE jobs ADD COLUMN segment_index INTEGER;
ALTER TABLE jobs ADD COLUMN segment_count INTEGER;
ALTER TABLE jobs ADD COLUMN segment_start_seconds REAL;
ALTER TABLE jobs ADD COLUMN segment_end_seconds REAL;
ALTER TABLE jobs ADD COLUMN segment_plan TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_children ON jobs (parent_id, task, segment_index);
-- "Agents seen in the last 10 minutes" for a plan is a range of heartbeats.
CREATE INDEX IF NOT EXISTS jobs_heartbeat ON jobs (heartbeat_at);
