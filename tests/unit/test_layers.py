"""The layers (docs/architecture.md, "Layers") hold, and `lint-imports` catches an import that breaks one.

The contracts are in pyproject.toml ([tool.importlinter]); the checks run import-linter on the real tree and on
copies of it with one forbidden import added.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cdc", "consumers", "schemas")
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(cwd: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    args = [arg for c in contracts for arg in ("--contract", c)]
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_the_real_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_contracts())} kept, 0 broken" in result.stdout


def test_every_module_of_cdc_has_a_layer() -> None:
    """A new top-level module of cdc is either foundation or application, never outside both contracts."""
    contracts = _contracts()
    foundation = {m for m in contracts["foundation"]["source_modules"] if m.startswith("cdc.")}
    application = {m for m in contracts["engine"]["forbidden_modules"]}
    assert not foundation & application
    modules = {f"cdc.{p.stem}" for p in (ROOT / "cdc").glob("*.py") if p.name != "__init__.py"}
    modules |= {f"cdc.{p.parent.name}" for p in (ROOT / "cdc").glob("*/__init__.py")}
    assert modules == foundation | application, (modules - foundation - application, foundation | application - modules)
    assert set(contracts["foundation"]["forbidden_modules"]) == application | {"consumers"}


# one forbidden import per contract: (contract, file, the line added to it)
VIOLATIONS = [
    ("foundation", "cdc/state/jobs.py", "from cdc.orchestrator import plan"),
    ("foundation", "schemas/change_event.py", "import consumers"),
    ("engine", "consumers/batch.py", "from cdc.monitoring import health"),
    ("decisions", "consumers/decisions/matching.py", "import asyncpg.pool"),
    ("decisions", "consumers/decisions/record.py", "from consumers import situation"),
    ("engine-surface", "cdc/orchestrator/verify.py", "from consumers.decisions.matching import match_key"),
    ("engine-surface", "cdc/cli/worker.py", "from consumers.worker import run_worker"),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three packages' Python files and pyproject.toml, copied once."""
    copy = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


@pytest.mark.parametrize(("contract", "path", "line"), VIOLATIONS, ids=[f"{c}:{p}" for c, p, _ in VIOLATIONS])
def test_a_forbidden_import_breaks_its_contract(tree: Path, contract: str, path: str, line: str) -> None:
    target = tree / path
    original = target.read_text()
    try:
        target.write_text(original + f"\n{line}\n")
        result = _lint(tree, contract)
    finally:
        target.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and _contracts()[contract]["name"] in result.stdout
    assert Path(path).with_suffix("").as_posix().replace("/", ".") in result.stdout


def test_the_copy_alone_keeps_the_contracts(tree: Path) -> None:
    """The copy is what was linted above (not the installed package): unchanged, it passes."""
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_public_surface_loads_lazily() -> None:
    """`from consumers import match_key` loads the decision it names, not the worker and its Kafka client."""
    code = ("import sys, consumers; from consumers import match_key; "
            "print(sorted(m for m in ('consumers.worker', 'consumers.batch', 'aiokafka') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_the_public_surface_names_resolve() -> None:
    import consumers

    assert set(consumers.__all__) == set(consumers._HOMES)
    for name in consumers.__all__:
        assert getattr(consumers, name) is getattr(sys.modules[consumers._HOMES[name]], name)
    with pytest.raises(AttributeError):
        _ = consumers.no_such_name


WORKER_NAMES = {"Worker", "run_worker"}


def _worker_uses(source: str) -> list[str]:
    """Where a module takes the engine's worker: `from consumers import Worker` (anywhere, even in a function) or
    `consumers.Worker`. import-linter sees modules, not names — to it that import is one more edge to `consumers`,
    like `from consumers import match_key` — so this rule is checked here."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "consumers":
            found += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if a.name in WORKER_NAMES or node.module == "consumers.worker"]
        elif (isinstance(node, ast.Attribute) and node.attr in WORKER_NAMES and isinstance(node.value, ast.Name)
              and node.value.id == "consumers"):
            found.append(f"line {node.lineno}: consumers.{node.attr}")
    return found


def test_the_orchestrator_is_handed_its_worker() -> None:
    """The orchestrator starts an in-process worker only through the `WorkerFactory` its caller hands it
    (cdc.orchestrator.workers); it never takes the engine's worker itself."""
    found = {str(path.relative_to(ROOT)): uses for path in sorted((ROOT / "cdc" / "orchestrator").rglob("*.py"))
             if (uses := _worker_uses(path.read_text()))}
    assert found == {}


@pytest.mark.parametrize("line", ["from consumers import Worker", "from consumers import match_key, run_worker",
                                  "from consumers.worker import Worker", "import consumers\nconsumers.Worker(s, m)"])
def test_a_worker_taken_by_the_orchestrator_is_found(line: str) -> None:
    source = (ROOT / "cdc" / "orchestrator" / "workers.py").read_text()
    assert _worker_uses(source) == []
    indented = "\n".join("    " + part for part in line.split("\n"))
    assert len(_worker_uses(source + f"\n\ndef start():\n{indented}\n")) == 1
