"""Where a job's files live in blob storage."""


def input_key(job_id: str, field: str, extension: str) -> str:
    return f"inputs/{job_id}/{field}.{extension}"


def video_prefix(job_id: str) -> str:
    return f"videos/{job_id}/"


def video_key(job_id: str, attempt: int) -> str:
    """One key per attempt: a zombie agent of an old attempt can only overwrite its own
    upload, never the published result."""
    return f"{video_prefix(job_id)}{attempt}.mp4"
