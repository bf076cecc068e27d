"""Fail unless every package reaches its coverage floor (see the developers' guide).

Packages need 80 %; the job state machine, auth and the agent protocol need 100 %.
"""

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

PACKAGE_FLOOR = 80.0
PACKAGES = ("contracts", "edge_worker", "gpu_agent", "infinitetalk", "avatar_client")
FULL_COVERAGE = (
    "edge_worker/jobs.py",
    "edge_worker/auth.py",
    "edge_worker/routes/agent.py",
    "contracts/agent.py",
    "gpu_agent/edge_client.py",
    "gpu_agent/queue_client.py",
)


def main(report: Path) -> int:
    root = ET.parse(report).getroot()  # noqa: S314 - our own coverage report
    sources = [Path(s.text or "") for s in root.iter("source")]
    files: dict[str, tuple[int, int]] = {}
    for cls in root.iter("class"):
        filename = cls.get("filename", "")
        for source in sources:
            candidate = source / filename
            if candidate.exists():
                filename = str(candidate.relative_to(Path.cwd()))
                break
        lines = cls.find("lines")
        hits = [int(line.get("hits", "0")) > 0 for line in (lines if lines is not None else [])]
        branches = 0
        covered_branches = 0
        for line in lines if lines is not None else []:
            if line.get("branch") == "true":
                covered, _, total = (line.get("condition-coverage", "0% (0/0)").split("(")[1])[
                    :-1
                ].partition("/")
                branches += int(total)
                covered_branches += int(covered)
        files[filename] = (sum(hits) + covered_branches, len(hits) + branches)

    failures = []
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for filename, (covered, total) in files.items():
        package = filename.split("/")[0]
        totals[package][0] += covered
        totals[package][1] += total
        if filename in FULL_COVERAGE and covered < total:
            failures.append(f"{filename}: {100 * covered / total:.1f}% < 100%")
    for package in PACKAGES:
        covered, total = totals.get(package, [0, 0])
        if total == 0:
            failures.append(f"{package}: no coverage data")
            continue
        percent = 100 * covered / total
        print(f"{package:<14} {percent:6.1f}%")
        if percent < PACKAGE_FLOOR:
            failures.append(f"{package}: {percent:.1f}% < {PACKAGE_FLOOR}%")
    for name in FULL_COVERAGE:
        if name not in files:
            failures.append(f"{name}: not measured")
    for failure in failures:
        print(f"coverage too low: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "coverage.xml")))
