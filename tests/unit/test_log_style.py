"""One logging style (docs/architecture.md, "Logging"): each module's `log = structlog.get_logger(**context)` at
module level, a lazy proxy that follows `cdc.log.configure` even when that runs after the import.

A logger bound at import (`structlog.get_logger().bind(...)` at module level) keeps the processors it was made with,
so in service mode its lines would come out in the console format, outside the JSON the others write.
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from cdc import log as cdc_log

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cdc", "consumers", "schemas")


@pytest.fixture
def restored() -> Iterator[None]:
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_module_logger_writes_json_when_configured_after_its_import(restored: None,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    transactions = importlib.import_module("cdc.capture.transactions")
    worker = importlib.import_module("consumers.worker")
    cdc_log.configure("json", "info")
    transactions.log.warning("probe", table="customer")
    worker.log.info("probe", worker="w1")
    worker.log.debug("below the level")
    worker.log.bind(key="K1").info("bound", mapping="CUSTOMER")
    lines = _lines(capsys.readouterr().err)
    assert [(line["event"], line["level"]) for line in lines] == [("probe", "warning"), ("probe", "info"),
                                                                  ("bound", "info")]
    assert lines[0]["component"] == "capture" and lines[0]["table"] == "customer"
    assert lines[1]["worker"] == "w1" and "component" not in lines[1]
    assert lines[2]["key"] == "K1" and lines[2]["mapping"] == "CUSTOMER"
    assert all("timestamp" in line for line in lines)


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _is_get_logger(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_logger"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "structlog")


def test_every_module_takes_its_logger_one_way() -> None:
    """`structlog.get_logger(...)` only as a module-level `log = …` (per-call context through `log.bind(…)` or
    keyword arguments inside functions), never bound at import, and `cdc.log` used for `configure` only."""
    problems: list[str] = []
    for path, tree in _modules():
        where = path.relative_to(ROOT)
        module_level, quieted, named = set(), set(), []
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and _is_get_logger(statement.value):
                module_level.add(id(statement.value))
                if [ast.unparse(t) for t in statement.targets] != ["log"]:
                    problems.append(f"{where}:{statement.lineno}: the module logger is named `log`")
            if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for node in ast.walk(statement):
                    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                            and node.func.attr == "bind"):
                        problems.append(f"{where}:{node.lineno}: a logger bound at import")
        for node in ast.walk(tree):
            if _is_get_logger(node) and id(node) not in module_level:
                problems.append(f"{where}:{node.lineno}: structlog.get_logger outside a module-level `log = …`")
            if isinstance(node, ast.Attribute) and node.attr == "setLevel":
                quieted.add(id(node.value))  # `logging.getLogger(name).setLevel(…)`: a library's own logging
            if isinstance(node, ast.Attribute) and node.attr in {"wrap_logger", "getLogger"}:
                named.append(node)
            if isinstance(node, ast.ImportFrom) and node.module == "cdc":
                for alias in (a for a in node.names if a.name == "log"):
                    name = alias.asname or alias.name
                    uses = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                            and isinstance(n.value, ast.Name) and n.value.id == name}
                    if uses - {"configure"}:
                        problems.append(f"{where}:{node.lineno}: cdc.log is for `configure` only, not {sorted(uses)}")
        calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
        for node in named:
            if node.attr == "wrap_logger" or id(calls.get(id(node))) not in quieted:
                problems.append(f"{where}:{node.lineno}: {node.attr}: log through the module's structlog logger")
    assert not problems, "\n".join(problems)
