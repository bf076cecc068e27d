"""Applied at start-up by every interpreter whose PYTHONPATH starts with this folder.

Subprocess mode puts this folder first on upstream's PYTHONPATH, so that
`generate_infinitetalk.py` imports on Python 3.11+ (see `infinitetalk/upstream/compat.py`).
It loads that module by path: upstream's interpreter need not have this project installed.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_infinitetalk_upstream_compat", Path(__file__).resolve().parent.parent / "compat.py"
)
assert _spec is not None and _spec.loader is not None
_compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_compat)
_compat.install()
