"""The layers (docs/architecture.md, "Layers") hold, and `lint-imports` catches an import that breaks one.

The contracts are in pyproject.toml ([tool.importlinter]); the checks run import-linter on the real tree and on
copies of it with one forbidden import added.
"""

from __future__ import annotations

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
    ("decisions", "consumers/decisions/values.py", "import asyncpg.pool"),
    ("decisions", "consumers/decisions/record.py", "from consumers import situation"),
    ("engine-surface", "cdc/orchestrator/verify.py", "from consumers.decisions.values import canonical"),
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
    """`from consumers import canonical` loads the decision it names, not the worker and its Kafka client."""
    code = ("import sys, consumers; from consumers import canonical; "
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
