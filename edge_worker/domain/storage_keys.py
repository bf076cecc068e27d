"""Where a job's files live in blob storage."""


def input_key(job_id: str, field: str, extension: str) -> str:
    return f"inputs/{job_id}/{field}.{extension}"


def video_prefix(job_id: str) -> str:
    return f"videos/{job_id}/"


def video_key(job_id: str, attempt: int) -> str:
    """One key per attempt: a zombie agent of an old attempt can only overwrite its own
    upload, never the published result."""
    return f"{video_prefix(job_id)}{attempt}.mp4"


def segment_audio_key(parent_id: str, plan_attempt: int, index: int) -> str:
    """Under the parent's video prefix, so its expiry and input sweep delete it; one set per
    planning attempt, so a lost planner's late uploads never mix with the next plan."""
    return f"{video_prefix(parent_id)}plan-{plan_attempt}/{index}.wav"


def segment_video_key(parent_id: str, index: int, attempt: int) -> str:
    return f"{video_prefix(parent_id)}segments/{index}/{attempt}.mp4"


def stitch_video_key(parent_id: str, attempt: int) -> str:
    """The stitched result: published as the parent's result."""
    return f"{video_prefix(parent_id)}stitch/{attempt}.mp4"


def audio_track_key(parent_id: str, plan_attempt: int) -> str:
    """The planner's AAC of the whole audio, beside that plan's segment audio."""
    return f"{video_prefix(parent_id)}plan-{plan_attempt}/track.m4a"
