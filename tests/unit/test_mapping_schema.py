"""`cdc mappings schema`: the mapping file's JSON Schema, from the model, that editors complete and check with."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from cdc.cli.mappings import mappings_app
from cdc.mapping.schema import mapping_schema
from cdc.settings import DEFAULT_MAPPING_FILE

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [DEFAULT_MAPPING_FILE, *sorted((ROOT / "examples").glob("*/mappings.yaml"))]


def test_the_command_prints_the_schema_of_the_model() -> None:
    result = CliRunner().invoke(mappings_app, ["schema"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == mapping_schema()
    jsonschema.Draft7Validator.check_schema(printed)
    assert printed["$schema"] == "http://json-schema.org/draft-07/schema#", "what editors' YAML servers validate with"
    assert "$defs" not in json.dumps(printed), "draft 7 has definitions"


def test_the_copy_in_docs_is_current() -> None:
    """docs/mapping.schema.json is what the repository's mapping files name in their modeline."""
    assert json.loads((ROOT / "docs" / "mapping.schema.json").read_text()) == mapping_schema(), \
        "run: cdc mappings schema > docs/mapping.schema.json"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_mapping_file_is_valid_by_the_schema(path: Path) -> None:
    jsonschema.Draft7Validator(mapping_schema()).validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", SHIPPED[1:], ids=lambda p: str(p.relative_to(ROOT)))
def test_the_examples_name_the_schema_for_their_editor(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../docs/mapping.schema.json"
    assert (path.parent / "../../docs/mapping.schema.json").resolve().is_file()


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda m: m.update(after_match="latest"), "'latest' is not one of"),
    (lambda m: m["fields"][0].update(on_lookup_failure="skip"), "'skip' is not one of"),
    (lambda m: m["fields"][0].update(colour="red"), "Additional properties are not allowed ('colour'"),
    (lambda m: m["erp"]["new_key"].update(strategy="serial"), "'serial' is not one of"),
    (lambda m: m["erp"].update(filter={"field": "no", "op": "glob", "value": "V*"}), "is not valid under any"),
])
def test_an_editor_is_told_what_is_wrong(change, complaint: str) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "purchasing" / "mappings.yaml").read_text())
    vendor = next(m for m in spec["mappings"] if m["name"] == "VENDOR")
    change(vendor)
    with pytest.raises(jsonschema.ValidationError, match=complaint.replace("(", r"\(")):
        jsonschema.Draft7Validator(mapping_schema()).validate(spec)
