"""Fail unless every package reaches its coverage floor (see the developers' guide).

Packages need 80 %; the job state machine, auth and the agent protocol need 100 %.
Reads the `.coverage` data that `pytest --cov` leaves behind.
"""

import io
import sys

from coverage import Coverage
from coverage.exceptions import NoDataError

PACKAGE_FLOOR = 80.0
PACKAGES = ("contracts", "edge_worker", "gpu_agent", "infinitetalk", "avatar_client")
FULL_COVERAGE = (
    "edge_worker/domain/jobs.py",
    "edge_worker/auth.py",
    "edge_worker/routes/agent.py",
    "edge_worker/usecases/agent_protocol.py",
    "contracts/agent.py",
    "gpu_agent/edge_client.py",
    "gpu_agent/queue_client.py",
)


def percent(cov: Coverage, pattern: str) -> float | None:
    try:
        return cov.report(include=[pattern], file=io.StringIO())
    except NoDataError:
        return None


def main() -> int:
    cov = Coverage()
    cov.load()
    failures = []
    for target, floor in [
        *((f"{p}/*", PACKAGE_FLOOR) for p in PACKAGES),
        *((f, 100.0) for f in FULL_COVERAGE),
    ]:
        value = percent(cov, target)
        if value is None:
            failures.append(f"{target}: not measured")
            continue
        print(f"{target:<32} {value:6.1f}%  (floor {floor:g}%)")
        if value < floor:
            failures.append(f"{target}: {value:.1f}% < {floor:g}%")
    for failure in failures:
        print(f"coverage too low: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
