-- Migration number: 0004   The sweep asks which expired uploads a job still reads.
CREATE INDEX IF NOT EXISTS jobs_image_key ON jobs (image_key);
CREATE INDEX IF NOT EXISTS jobs_audio_key ON jobs (audio_key);
