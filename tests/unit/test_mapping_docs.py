"""docs/mappings.md is the complete reference of the mapping file: a key the model gains without a row in the
reference, or an allowed value (an op, a strategy, a policy) it does not name, fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cdc.mapping.schema import mapping_schema

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "mappings.md"
MARKER = re.compile(r"<!-- model: (\w+) -->")


def sections() -> dict[str, str]:
    """The text documenting each model: from its marker to the next marker or heading."""
    text = REFERENCE.read_text()
    found: dict[str, str] = {}
    for match in MARKER.finditer(text):
        rest = text[match.end():]
        end = re.search(r"<!-- model: |\n#+ ", rest)
        found[match.group(1)] = rest[:end.start()] if end else rest
    return found


def models() -> dict[str, dict[str, Any]]:
    schema = mapping_schema()
    return {"MappingFile": schema, **schema["definitions"]}


def enums(node: Any) -> set[str]:
    if isinstance(node, dict):
        values = {str(v) for v in node.get("enum", [])}
        if "const" in node:
            values.add(str(node["const"]))
        return values.union(*(enums(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(enums(v) for v in node))
    return set()


@pytest.mark.parametrize("model", sorted(models()))
def test_every_key_of_every_model_has_a_row_in_its_section(model: str) -> None:
    documented = sections()
    assert model in documented, f"docs/mappings.md has no '<!-- model: {model} -->' section"
    rows = set(re.findall(r"^\| `([^`]+)` \|", documented[model], re.MULTILINE))
    keys = set(models()[model].get("properties", {}))
    assert keys - rows == set(), f"{model}: keys without a row in docs/mappings.md"
    assert rows - keys == set(), f"{model}: rows for keys the model does not have"


def test_every_allowed_value_is_named_in_the_reference() -> None:
    text = REFERENCE.read_text()
    missing = sorted(value for value in enums(mapping_schema()) if f"`{value}`" not in text)
    assert missing == []


def test_no_section_documents_a_model_that_does_not_exist() -> None:
    assert set(sections()) <= set(models())
