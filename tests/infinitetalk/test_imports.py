"""Importing the engine protocol and the factory stays cheap: no media or model libraries.

The agent imports both at start-up (and `avatar-agent probe` runs without them), so the
heavy engines load only when `create_engine` builds one.
"""

import json
import subprocess
import sys

HEAVY = ("av", "numpy", "PIL", "torch")


def test_engine_and_factory_import_no_media_or_model_library() -> None:
    code = (
        "import json, sys\n"
        "import infinitetalk.engine, infinitetalk.factory\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
