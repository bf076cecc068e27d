"""A result past its retention that the sweep has not marked expired yet: no link to it.

The sweep runs on a timer (the Worker's cron: every 5 minutes), so a completed job can
outlive its `expires_at` for a while. No blob store signs a link that has already expired
(R2 and S3 refuse a zero or negative `X-Amz-Expires`), and the video may be gone.
"""

from litestar.testing import TestClient

from tests.edge_worker.conftest import AUTH, FakeClock, submit
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload


def test_a_result_past_retention_has_no_link_before_the_sweep(
    client: TestClient, clock: FakeClock
) -> None:
    job_id = submit(client)["job_id"]
    grant = claim(client, job_id)
    upload(client, grant)
    post(
        client,
        job_id,
        "complete",
        {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}},
    )
    assert client.get(f"/result/{job_id}", headers=AUTH).status_code == 200
    clock.advance(hours=6, seconds=1)
    view = client.get(f"/status/{job_id}", headers=AUTH).json()
    assert (view["status"], view["result_url"]) == ("completed", None)
    gone = client.get(f"/result/{job_id}", headers=AUTH)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "RESULT_EXPIRED")
