"""The layering is enforced, not a convention (docs/architecture.md).

domain/ is pure: it imports no AWS SDK, HTTP client or Powertools, reads no environment variable and no clock (time
is passed in as `now`), and imports nothing from the layers around it; of settings/ only the pydantic schema.
notify/ knows no AWS; entry points are the only modules that build runtimes outside bootstrap.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "findings_router"

FOREIGN = ("boto3", "botocore", "requests", "urllib3", "aws_lambda_powertools", "pydantic", "yaml")
OUTER_LAYERS = (
    "findings_router.adapters",
    "findings_router.notify",
    "findings_router.service",
    "findings_router.entrypoints",
    "findings_router.bootstrap",
    "findings_router.settings.load",
)
CLOCKS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}
TIME_READS = {"time", "monotonic", "perf_counter", "time_ns", "sleep"}


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _problems(path: Path, forbidden_imports: tuple[str, ...]) -> list[str]:
    tree = ast.parse(path.read_text())
    where = path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name
    found = [
        f"{where} imports {name}"
        for name in _imports(tree)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden_imports)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (owner_name, node.attr) in CLOCKS:
                found.append(f"{where}:{node.lineno} reads the clock ({owner_name}.{node.attr})")
            if owner_name == "time" and node.attr in TIME_READS:
                found.append(f"{where}:{node.lineno} reads the clock (time.{node.attr})")
            if owner_name == "os" and node.attr in ("environ", "getenv"):
                found.append(f"{where}:{node.lineno} reads the environment (os.{node.attr})")
        if isinstance(node, ast.Import | ast.ImportFrom) and any(
            (a.name in ("os", "time") and isinstance(node, ast.Import))
            or (isinstance(node, ast.ImportFrom) and node.module in ("os", "time"))
            for a in node.names
        ):
            found.append(f"{where}:{node.lineno} imports os/time")
    return found


@pytest.mark.parametrize("path", _modules("domain"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_domain_is_pure(path: Path):
    assert _problems(path, FOREIGN + OUTER_LAYERS) == []


@pytest.mark.parametrize("path", _modules("notify"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_notifiers_know_no_aws_and_no_runtime(path: Path):
    forbidden = ("boto3", "botocore", "aws_lambda_powertools", "findings_router.adapters", "findings_router.service")
    forbidden += ("findings_router.entrypoints", "findings_router.bootstrap", "findings_router.settings")
    assert [p for p in _problems(path, forbidden) if "imports" in p and "os/time" not in p] == []


def test_the_guard_catches_what_it_forbids(tmp_path: Path):
    """The scan itself can fail: an impure module is reported."""
    impure = tmp_path / "impure.py"
    impure.write_text(
        "import os\nimport datetime as dt\nimport boto3\nfrom findings_router.notify import Notifier\n"
        "x = os.environ['A']\ny = dt.datetime.now()\n"
    )
    problems = " ".join(_problems(impure, FOREIGN + OUTER_LAYERS))
    for expected in ("imports boto3", "imports findings_router.notify", "os.environ", "datetime.now", "os/time"):
        assert expected in problems


def test_only_bootstrap_and_the_entry_points_build_runtimes():
    builders = {"build_router", "build_ack_receiver", "build_meta_alerts"}
    callers = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in builders:
                callers.add(path.relative_to(PACKAGE).parts[0])
    # bootstrap.py itself composes (the sweep's runtime is the router's, with the time index).
    assert callers <= {"entrypoints", "bootstrap.py"}
