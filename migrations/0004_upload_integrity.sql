-- Migration number: 0004   Upload integrity: the ETag of each uploaded input as /generate
-- checked it, and indexes for the sweep's question of which expired uploads a job still reads.
ALTER TABLE jobs ADD COLUMN image_etag TEXT;
ALTER TABLE jobs ADD COLUMN audio_etag TEXT;
CREATE INDEX IF NOT EXISTS jobs_image_key ON jobs (image_key);
CREATE INDEX IF NOT EXISTS jobs_audio_key ON jobs (audio_key);
