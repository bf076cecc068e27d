-- Migration number: 0010   Dubbing and two speakers: the video that replaces the image, the
-- second speaker's track with their ETags, the speaker mode and the client's boxes, the
-- assignment the agent used (JSON), and how many claims were refused for want of a
-- capability. image_key is '' on a video job.
ALTER TABLE jobs ADD COLUMN video_key TEXT;
ALTER TABLE jobs ADD COLUMN video_etag TEXT;
ALTER TABLE jobs ADD COLUMN audio2_key TEXT;
ALTER TABLE jobs ADD COLUMN audio2_etag TEXT;
ALTER TABLE jobs ADD COLUMN speaker_mode TEXT;
ALTER TABLE jobs ADD COLUMN speaker_boxes TEXT;
ALTER TABLE jobs ADD COLUMN speakers_json TEXT;
ALTER TABLE jobs ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
-- The sweep asks which upload keys a job still reads.
CREATE INDEX IF NOT EXISTS jobs_video_key ON jobs (video_key);
CREATE INDEX IF NOT EXISTS jobs_audio2_key ON jobs (audio2_key);
