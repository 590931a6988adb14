"""Reading a mapping file: YAML in, a validated MappingFile out, or every problem as one line.

Each line names the file (with line and column when the problem sits at a known place), the mapping and the
field, e.g. `mappings.yaml:40:9: mapping CUSTOMER, field name <-> name, direction: input should be ...`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cdc.errors import ConfigError
from cdc.mapping.model import MappingFile
from cdc.mapping.order import dependency_order
from cdc.settings import DEFAULT_MAPPING_FILE

MAX_BYTES = 1024 * 1024
"""A mapping file larger than this is refused (a 60 MB one took 47 s to refuse)."""
MAX_DEPTH = 64
"""Nesting deeper than this (mappings, lists, filters within filters) is refused."""


class MappingFileError(ConfigError):
    """A mapping file that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def default_mapping_file() -> MappingFile:
    """The seven standard mappings shipped with the service."""
    return load_mapping_file(DEFAULT_MAPPING_FILE)


def load_mapping_file(path: str | Path) -> MappingFile:
    path = Path(path)
    try:
        text = _read(path).decode("utf-8")
    except FileNotFoundError:
        raise MappingFileError([f"{path}: no such mapping file"]) from None
    except IsADirectoryError:
        raise MappingFileError([f"{path}: is a directory, not a mapping file"]) from None
    except UnicodeDecodeError as exc:
        raise MappingFileError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise MappingFileError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None
    return parse_mapping_text(text, str(path))


def _read(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_BYTES. Opened without blocking, so a FIFO is refused
    instead of waited on, and read no further than the limit, so /dev/zero is refused instead of filling memory."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as file:
        kind = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(kind):
            raise IsADirectoryError
        if not stat.S_ISREG(kind):
            raise MappingFileError([f"{path}: not a regular file (a device, FIFO or socket): a mapping file is a "
                                    "file"])
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise MappingFileError([f"{path}: larger than {MAX_BYTES // 1024} KiB: a mapping file is a few KiB "
                                f"(the seven standard mappings take 7)"])
    return data


def parse_mapping_text(text: str, source: str) -> MappingFile:
    """Validate mapping-file text; `source` names it in problems."""
    node, data = _parse_yaml(text, source)
    if data is None:
        raise MappingFileError([f"{source}: the file is empty; it needs 'version: 1' and 'mappings'"])
    if not isinstance(data, dict):
        raise MappingFileError([f"{source}: the file must hold a mapping with 'version: 1' and 'mappings'"])
    problems = _duplicate_keys(node, source)
    try:
        mapping_file = MappingFile.model_validate(data)
    except ValidationError as exc:
        raise MappingFileError(problems + [line for error in exc.errors() for line in
                                           _describe(error, data, node, source)]) from None
    if problems:
        raise MappingFileError(problems)
    try:
        dependency_order(mapping_file)
    except ConfigError as exc:
        raise MappingFileError([f"{source}: {exc}"]) from None
    return mapping_file


class _TooDeep(yaml.MarkedYAMLError):
    pass


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than MAX_DEPTH (its composer recurses once per level, so a
    filter nested 2,000 deep ended in RecursionError)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(problem=f"nested more than {MAX_DEPTH} levels deep",
                               problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self.depth -= 1


def locator(path: str | Path) -> Callable[[tuple[int | str, ...]], str]:
    """For a mapping file that loads: a function from a path of keys (e.g. `('mappings', 3, 'fields', 11)`) to
    `file:line:col` of the deepest part of it the file holds (`file` alone when none)."""
    source = str(path)
    node, data = _parse_yaml(Path(path).read_text(encoding="utf-8"), source)

    def where(at: tuple[int | str, ...]) -> str:
        found, found_node = _resolve(at, data, node)
        return _at(source, found_node) if found else source

    return where


def _parse_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise MappingFileError([f"{source}: not a text file: character {character} at offset {exc.position} "
                                "is not allowed in YAML"]) from None
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = ": ".join(part for part in (exc.context, exc.problem) if part)
        kind = "" if isinstance(exc, _TooDeep) else "YAML syntax error: "
        raise MappingFileError([f"{where}: {kind}{problem}"]) from None
    except yaml.YAMLError as exc:
        raise MappingFileError([f"{source}: YAML syntax error: {exc}"]) from None
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node | None, source: str) -> list[str]:
    """YAML lets a later key silently replace an earlier one; a mapping file must not."""
    problems: list[str] = []
    seen_nodes: set[int] = set()

    def walk(n: yaml.Node) -> None:
        if id(n) in seen_nodes:
            return
        seen_nodes.add(id(n))
        if isinstance(n, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in n.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in keys:
                        problems.append(f"{_at(source, key)}: key {key.value!r} appears twice in one block")
                    keys.add(key.value)
                walk(value)
        elif isinstance(n, yaml.SequenceNode):
            for item in n.value:
                walk(item)

    if node is not None:
        walk(node)
    return problems


def _at(source: str, node: yaml.Node | None) -> str:
    if node is None:
        return source
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _describe(error: ErrorDetails, data: dict[str, Any], root: yaml.Node | None, source: str) -> list[str]:
    """One validation error as lines `file[:line:col]: mapping M, field F, rest.of.path: message`."""
    path, node = _resolve(error["loc"], data, root)
    kind = error["type"]
    if kind == "missing":
        message = f"required key {error['loc'][-1]!r} is missing"
    elif kind == "extra_forbidden" and path:
        message = f"unknown key {path.pop()!r}"
    else:
        message = _message(error)
    where = _where(path, data)
    prefix = f"{_at(source, node)}: {where}" if path else source
    return [f"{prefix}: {line}" for line in message.splitlines()]


def _resolve(loc: tuple[int | str, ...], data: Any, root: yaml.Node | None) -> tuple[list[Any], Any]:
    """Follow an error location through the data and its YAML nodes, dropping the parts that are not there
    (the union tags pydantic adds, a missing key)."""
    path: list[Any] = []
    value, node = data, root
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            continue
        node = _child(node, part)
        path.append(part)
    return path, node


def _child(node: yaml.Node | None, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                    node)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return node


def _where(path: list[Any], data: dict[str, Any]) -> str:
    parts: list[str] = []
    rest = list(path)
    if len(rest) >= 2 and rest[0] == "mappings" and isinstance(rest[1], int):
        mapping = data["mappings"][rest[1]]
        name = mapping.get("name") if isinstance(mapping, dict) else None
        parts.append(f"mapping {name}" if isinstance(name, str) else f"mapping #{rest[1] + 1}")
        rest = rest[2:]
        if len(rest) >= 2 and rest[0] == "fields" and isinstance(rest[1], int):
            field = mapping["fields"][rest[1]]
            if isinstance(field, dict):
                erp, crm = field.get("erp") or "<constant>", field.get("crm") or "<constant>"
                parts.append(f"field {erp} <-> {crm}")
            else:
                parts.append(f"field #{rest[1] + 1}")
            rest = rest[2:]
    if rest:
        parts.append("".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip("."))
    return ", ".join(parts)


def _message(error: ErrorDetails) -> str:
    kind, message, ctx = error["type"], error["msg"], error.get("ctx") or {}
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "union_tag_invalid":
        tags = ctx.get("expected_tags")
        return f"unknown {ctx.get('discriminator')} {ctx.get('tag')!r}; expected one of {tags}"
    message = message[:1].lower() + message[1:]
    given = error.get("input")
    if isinstance(given, str | int | float | bool) or given is None:
        message += f" (got {given!r})"
    if isinstance(given, bool) and kind == "string_type":
        message += "; YAML reads unquoted yes/no/on/off/true/false as booleans: quote the value"
    return message
