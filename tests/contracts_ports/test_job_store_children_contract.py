"""The JobStore contract for split jobs (segment fan-out), on SQLite and on real local D1:
children are inserted at most once, read back in order, and counted nowhere a client's
own jobs are counted."""

import dataclasses
from datetime import timedelta

from edge_worker.domain import jobs, segments
from edge_worker.domain.jobs import Job, SegmentPlan
from edge_worker.ports import JobStore, SweepKind
from tests.conftest import run
from tests.contracts_ports.test_job_store_contract import T0, claimed, insert, make_job

PLAN = SegmentPlan(attempt=1, audio_seconds=50.0, bounds=((0.0, 25.0), (25.0, 50.0)))
KEYS = ["videos/p/plan-1/0.wav", "videos/p/plan-1/1.wav"]


def split_parent(job_id: str = "parent") -> Job:
    parent = claimed(dataclasses.replace(make_job(job_id), parallel="auto"), T0)
    parent = jobs.record_plan(parent, claim_token=f"tok-{job_id}", plan=PLAN, now=T0)
    return jobs.split(parent, claim_token=f"tok-{job_id}", now=T0)


def test_a_child_is_inserted_once_by_id_and_by_parent_task_and_index(job_store: JobStore) -> None:
    parent = split_parent()
    insert(job_store, parent)
    first, second = segments.new_segments(parent, [0, 1], KEYS, T0)
    assert run(job_store.insert_child(first)) is True
    assert run(job_store.insert_child(first)) is False
    # Another id at the same (parent, task, index): the unique index refuses it too.
    assert run(job_store.insert_child(dataclasses.replace(first, id="other-id"))) is False
    assert run(job_store.insert_child(second)) is True
    stitch = segments.new_stitch(parent, T0)
    assert run(job_store.insert_child(stitch)) is True
    assert run(job_store.insert_child(dataclasses.replace(stitch, id="stitch-2"))) is False
    children = run(job_store.children("parent"))
    assert children == [first, second, stitch]
    assert run(job_store.children("no-such-parent")) == []


def test_children_are_not_the_owners_jobs(job_store: JobStore) -> None:
    parent = split_parent()
    insert(job_store, parent)
    for child in segments.new_segments(parent, [0, 1], KEYS, T0):
        run(job_store.insert_child(child))
    page = run(job_store.list_for_owner("owner-a", 10, None))
    assert [job.id for job in page.jobs] == ["parent"]
    load = run(job_store.owner_load("owner-a", T0 - timedelta(days=1)))
    assert (load.active, load.queued) == (1, 0)  # the parent, processing; no child counted
    stale = T0 + timedelta(hours=1)
    assert [j.id for j in run(job_store.find_for_sweep(SweepKind.SPLIT, stale, 10))] == ["parent"]
    assert run(job_store.find_for_sweep(SweepKind.SPLIT, T0, 10)) == []
    # A split parent has no agent: never lost, however old its heartbeat.
    assert run(job_store.find_for_sweep(SweepKind.LOST, stale, 10)) == []


def test_agents_seen_counts_distinct_agents_since_a_time(job_store: JobStore) -> None:
    early, late = T0 - timedelta(minutes=20), T0
    insert(
        job_store,
        jobs.claim(make_job("a"), agent_id="agent-1", claim_token="t1", now=early),
        jobs.claim(make_job("b"), agent_id="agent-2", claim_token="t2", now=late),
        jobs.claim(make_job("c"), agent_id="agent-2", claim_token="t3", now=late),
        jobs.claim(make_job("d"), agent_id="agent-3", claim_token="t4", now=late),
    )
    assert run(job_store.agents_seen(T0 - timedelta(minutes=10))) == 2
    assert run(job_store.agents_seen(early)) == 3
    assert run(job_store.agents_seen(T0 + timedelta(seconds=1))) == 0
