-- Migration number: 0006   Usage metering: what each job measured. Audio seconds at /generate
-- (from the header), video and GPU seconds and the engine at complete (copied from the
-- result). GET /usage groups them over the (owner, created_at) index of 0001.
ALTER TABLE jobs ADD COLUMN audio_seconds REAL;
ALTER TABLE jobs ADD COLUMN video_seconds REAL;
ALTER TABLE jobs ADD COLUMN gpu_seconds REAL;
ALTER TABLE jobs ADD COLUMN engine TEXT;
