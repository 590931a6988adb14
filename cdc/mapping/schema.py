"""The JSON Schema of the mapping file, generated from the model, for editors that complete and check YAML.

`cdc mappings schema` prints it; docs/mapping.schema.json is a copy (a test keeps it current) that a mapping file
in this repository names in its first line: `# yaml-language-server: $schema=../../docs/mapping.schema.json`.
What the schema cannot say (a lookup naming a mapping of the file, a column of the live tables) is for
`cdc mappings validate`.

It is written in JSON Schema draft 7 (`definitions`, not `$defs`): the YAML language server behind most editors
validates with draft 7 and warns that later drafts are not fully supported. Nothing of the model needs more.
"""

from __future__ import annotations

from typing import Any

from cdc.mapping.model import MappingFile

DIALECT = "http://json-schema.org/draft-07/schema#"


def mapping_schema() -> dict[str, Any]:
    schema = MappingFile.model_json_schema(by_alias=True, mode="validation", ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    schema.pop("title", None)
    return {"$schema": DIALECT, "title": "cdc-sync mapping file", **schema, "definitions": definitions}
