-- Migration number: 0007   Usage metering: what each job measured. Audio seconds at /generate
-- (from the header), video and GPU seconds and the engine at complete (copied from the
-- result). GET /usage groups them over the (owner, created_at) index of 0001.
ALTER TABLE jobs ADD COLUMN audio_seconds REAL;
ALTER TABLE jobs ADD COLUMN video_seconds REAL;
ALTER TABLE jobs ADD COLUMN gpu_seconds REAL;
ALTER TABLE jobs ADD COLUMN engine TEXT;
-- The admin's report across every owner reads a range of created_at.
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
