"""What the Worker imports must run under Pyodide (DESIGN §2).

Each entry module is imported in a fresh interpreter, then its `sys.modules` is checked:
none of the server-side or native-heavy packages, no thread started at import, and every
third-party distribution pulled in is pure Python or one that Pyodide ships compiled.
"""

import json
import re
import subprocess
import sys
import sysconfig
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# The project code the Worker bundle ships (not installed distributions).
EDGE_SOURCES = ("edge_worker", "contracts")

# `edge_worker.worker` is the Cloudflare entry point; the others are what it is built from.
ENTRY_MODULES = [
    "edge_worker.worker",
    "edge_worker.app",
    "edge_worker.adapters.cloudflare.presign",
    "edge_worker.usecases.maintenance",
]

FORBIDDEN = (
    "boto3",
    "botocore",
    "av",
    "PIL",
    "sqlite3",
    "_sqlite3",
    "uvicorn",
    "gpu_agent",
    "infinitetalk",
    "avatar_client",
    # The local runtime's wiring and stand-ins (SQLite, files, threads) stay out of the Worker.
    "edge_worker.local",
    "edge_worker.adapters.local",
)

# Compiled distributions Pyodide builds for WebAssembly. Source: the Pyodide recipes,
# github.com/pyodide/pyodide-recipes, packages/<name>/meta.yaml: pydantic_core (2.41.5 and
# 2.45.0 in two revisions; pinned together with pydantic, recipe 2.12.5), msgspec (0.20.0),
# multidict (6.5.0), pyyaml (6.0.3, top-level `yaml` and `_yaml`). Python Workers install
# "any package supported by Pyodide" (blog.cloudflare.com/python-workers-advancements).
PYODIDE_COMPILED = frozenset({"pydantic-core", "msgspec", "multidict", "pyyaml"})

# Provided by the Workers runtime, not installable on CPython: stubbed if absent.
RUNTIME_ONLY = ("js", "pyodide", "workers", "asgi")

PROBE = """
import importlib, importlib.abc, importlib.machinery, json, sys, threading, types

class Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (), {})
        setattr(self, name, value)
        return value

class RuntimeStubs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] in RUNTIME_ONLY:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return Stub(spec.name)

    def exec_module(self, module):
        module.__path__ = []

RUNTIME_ONLY = set(sys.argv[2].split(","))
sys.meta_path.append(RuntimeStubs())
already = set(sys.modules)  # the interpreter's own start-up (site, .pth hooks)
try:
    importlib.import_module(sys.argv[1])
except ModuleNotFoundError as exc:
    if exc.name is None or not (sys.argv[1] + ".").startswith(exc.name + "."):
        raise
    print(json.dumps({"missing": str(exc)}))
    raise SystemExit(0)
print(json.dumps({
    "modules": {
        name: getattr(m, "__file__", None)
        for name, m in list(sys.modules.items())
        if name not in already
    },
    "threads": [t.name for t in threading.enumerate()],
}))
"""


@cache
def imported_by(module: str) -> dict[str, object]:
    """The modules (name -> file) that importing `module` afresh adds to `sys.modules`,
    and the threads alive afterwards."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, ",".join(RUNTIME_ONLY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"importing {module} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    if "missing" in result:
        pytest.fail(
            f"{module} does not exist ({result['missing']}); every module in ENTRY_MODULES "
            "must, the Worker's entry point (DESIGN §2: edge_worker/worker.py) first of all"
        )
    return result


@cache
def distribution_of_file() -> dict[Path, metadata.Distribution]:
    """Every installed file, by absolute path, to the distribution whose RECORD lists it."""
    index = {}
    for dist in metadata.distributions():
        for file in dist.files or ():
            index[Path(dist.locate_file(file)).resolve()] = dist
    return index


def is_compiled(dist: metadata.Distribution) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    return "Root-Is-Purelib: false" in wheel or any(
        str(file).endswith((".so", ".pyd")) for file in dist.files or ()
    )


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(module: str) -> dict[str, metadata.Distribution]:
    """Third-party distributions behind the modules `module` imports, by normalised name;
    the standard library and the project's own edge sources are not distributions."""
    modules = imported_by(module)["modules"]
    assert isinstance(modules, dict)
    own = [Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")]
    own += [ROOT / source for source in EDGE_SOURCES]
    index = distribution_of_file()
    found: dict[str, metadata.Distribution] = {}
    unknown = []
    for name, file in sorted(modules.items()):
        if file is None:
            continue
        path = Path(file).resolve()
        dist = index.get(path)
        if dist is not None:
            found[normalised(dist.metadata["Name"])] = dist
        elif not any(path.is_relative_to(base) for base in own):
            unknown.append(f"{name} ({path})")
    assert not unknown, f"{module} imports modules no installed distribution owns: {unknown}"
    return found


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_imports_nothing_the_worker_cannot_have(module: str) -> None:
    modules = imported_by(module)["modules"]
    assert isinstance(modules, dict)
    pulled_in = sorted(
        name
        for name in modules
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)
    )
    assert not pulled_in, f"importing {module} pulls in {pulled_in}"


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_starts_no_thread_at_import(module: str) -> None:
    assert imported_by(module)["threads"] == ["MainThread"]


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_compiled_dependencies_are_shipped_by_pyodide(module: str) -> None:
    dists = runtime_distributions(module)
    compiled = {name for name, dist in dists.items() if is_compiled(dist)}
    assert compiled <= PYODIDE_COMPILED, (
        f"{module} needs compiled distributions Pyodide does not ship: "
        f"{sorted(compiled - PYODIDE_COMPILED)} (all runtime distributions: {sorted(dists)})"
    )


def test_the_dependency_scan_sees_the_edge_stack() -> None:
    """The guard is only as good as its scan: the app's known stack must show up in it,
    with the Rust/C ones recognised as compiled."""
    dists = runtime_distributions("edge_worker.app")
    assert {"litestar", "pydantic", "msgspec", "multipart", "anyio"} <= set(dists)
    assert {"pydantic-core", "msgspec"} <= {n for n, d in dists.items() if is_compiled(d)}
    assert not is_compiled(dists["litestar"])
