"""The GPU image's self-check: can this interpreter import upstream InfiniteTalk?

    python -m infinitetalk.upstream.check [UPSTREAM_DIR]

Imports what both engine modes import (`wan`, `wan.multitalk` and the
`generate_infinitetalk` script, with the compatibility shim applied first) and prints one
JSON line: the checkout's commit and the versions that matter. A missing or incompatible
dependency fails here, at build time, instead of at the first job. The directory defaults
to INFINITETALK_DIR, then to the image's /opt/InfiniteTalk.
"""

import importlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from infinitetalk.settings import DEFAULT_UPSTREAM_DIR
from infinitetalk.upstream import compat, pinned

MODULES = ("wan", "wan.multitalk", pinned.SCRIPT.removesuffix(".py"))
VERSIONED = ("torch", "diffusers", "transformers")


def check(upstream_dir: Path) -> dict[str, object]:
    """Import upstream from `upstream_dir`; raises whatever the import raises."""
    compat.install()
    sys.path.insert(0, str(upstream_dir))
    for name in MODULES:
        importlib.import_module(name)
    return {
        "upstream_dir": str(upstream_dir),
        "commit": pinned.checkout_commit(upstream_dir),
        "imported": list(MODULES),
        "python": platform.python_version(),
        **{name: _version(name) for name in VERSIONED},
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    default = os.environ.get("INFINITETALK_DIR") or str(DEFAULT_UPSTREAM_DIR)
    print(json.dumps(check(Path(args[0] if args else default).resolve())))


if __name__ == "__main__":
    main()
