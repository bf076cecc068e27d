"""The rules of a job's watch: which change is an event of which kind, event ids that
resume a stream without repeats, and the `Prefer: wait` preference."""

from datetime import UTC, datetime

import pytest

from contracts import JobStatus, JobView, Stage
from edge_worker.domain.job_events import (
    MAX_PREFER_WAIT_SECONDS,
    EventCursor,
    EventKind,
    Watched,
    parse_event_id,
    prefer_wait,
    worth_waiting,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def view(**changes: object) -> JobView:
    fields: dict[str, object] = {
        "job_id": "job-1",
        "status": JobStatus.PENDING,
        "progress": 0.0,
        "stage": Stage.QUEUED,
        "created_at": NOW,
        "updated_at": NOW,
        "queue_position": 2,
        **changes,
    }
    return JobView.model_validate(fields)


PENDING = view()
MOVED_UP = view(queue_position=1)
STARTED = view(status="processing", stage="downloading", queue_position=None)
GENERATING = view(status="processing", stage="generating", progress=40.0, eta_seconds=30)
FURTHER = view(status="processing", stage="generating", progress=60.0, eta_seconds=20)
DONE = view(status="completed", stage="done", progress=100.0, queue_position=None)


def replay(cursor: EventCursor, views: list[JobView]) -> list[tuple[EventKind, str]]:
    events = [cursor.next(one) for one in views]
    return [(event.kind, event.view.stage.value) for event in events if event is not None]


def test_the_first_event_is_a_status_and_changes_pick_their_kind() -> None:
    cursor = EventCursor()
    assert replay(cursor, [PENDING, PENDING, MOVED_UP, STARTED, GENERATING, FURTHER, DONE]) == [
        (EventKind.STATUS, "queued"),
        (EventKind.PROGRESS, "queued"),
        (EventKind.STATUS, "downloading"),
        (EventKind.STATUS, "generating"),
        (EventKind.PROGRESS, "generating"),
        (EventKind.STATUS, "done"),
    ]
    assert cursor.finished


def test_a_changed_view_that_a_watcher_does_not_see_is_no_event() -> None:
    """`updated_at` and a fresh signed `result_url` change with no news for a watcher."""
    cursor = EventCursor()
    assert cursor.next(DONE) is not None
    assert cursor.next(DONE.model_copy(update={"result_url": "https://x/2"})) is None


def test_ids_increase_and_say_what_the_client_has() -> None:
    cursor = EventCursor()
    ids = [event.event_id for one in (PENDING, STARTED, GENERATING) if (event := cursor.next(one))]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert parse_event_id(str(ids[-1])) == (3, Watched.of(GENERATING).fingerprint())


def test_a_resumed_stream_repeats_nothing_and_starts_with_a_status() -> None:
    first = EventCursor()
    last = [event for one in (PENDING, STARTED) if (event := first.next(one))][-1]
    resumed = EventCursor(str(last.event_id))
    assert resumed.next(STARTED) is None  # the client has it
    event = resumed.next(FURTHER)
    assert event is not None and event.kind is EventKind.STATUS
    assert event.event_id > last.event_id
    following = resumed.next(DONE)
    assert following is not None and following.event_id > event.event_id


def test_a_resumed_stream_sends_what_changed_while_it_was_away() -> None:
    first = EventCursor()
    last = first.next(PENDING)
    assert last is not None
    resumed = EventCursor(str(last.event_id))
    event = resumed.next(GENERATING)
    assert event is not None and (event.kind, event.view) == (EventKind.STATUS, GENERATING)


def test_a_client_that_has_the_final_state_gets_nothing_more() -> None:
    first = EventCursor()
    last = first.next(DONE)
    assert last is not None and first.finished
    resumed = EventCursor(str(last.event_id))
    assert resumed.next(DONE) is None
    assert resumed.finished


@pytest.mark.parametrize("text", [None, "", "abc", "-1", "1.5", "١٢", "9" * 31])
def test_a_foreign_last_event_id_starts_afresh(text: str | None) -> None:
    assert parse_event_id(text) is None
    cursor = EventCursor(text)
    event = cursor.next(PENDING)
    assert event is not None and event.kind is EventKind.STATUS
    assert parse_event_id(str(event.event_id)) == (1, Watched.of(PENDING).fingerprint())


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ([], None),
        (["wait=10"], 10),
        (["WAIT = 5"], 5),
        (['wait="7"'], 7),
        (["respond-async, wait=3"], 3),
        (["handling=lenient", "wait=4; foo=bar"], 4),
        (["wait=600"], MAX_PREFER_WAIT_SECONDS),
        (["wait=0"], None),
        (["wait=-3"], None),
        (["wait=soon"], None),
        (["wait"], None),
        (["wait=2, wait=9"], 2),  # only the first counts
        (["wait=x, wait=9"], None),
        (["return=minimal"], None),
    ],
)
def test_prefer_wait(headers: list[str], seconds: int | None) -> None:
    assert prefer_wait(headers) == seconds


def test_only_unfinished_jobs_are_worth_waiting_for() -> None:
    assert worth_waiting(PENDING) and worth_waiting(GENERATING)
    assert not worth_waiting(DONE)
    assert not worth_waiting(view(status="cancelled", stage="cancelled"))
