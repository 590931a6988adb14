"""The JSON Schema of the mapping file, generated from the model, for editors that complete and check YAML.

`cdc mappings schema` prints it; docs/mapping.schema.json is a copy (a test keeps it current) that a mapping file
in this repository names in its first line: `# yaml-language-server: $schema=../../docs/mapping.schema.json`.
What the schema cannot say (a lookup naming a mapping of the file, a column of the live tables) is for
`cdc mappings validate`.
"""

from __future__ import annotations

from typing import Any

from cdc.mapping.model import MappingFile

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def mapping_schema() -> dict[str, Any]:
    schema = MappingFile.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": DIALECT, "title": "cdc-sync mapping file", **{k: v for k, v in schema.items()
                                                                      if k != "title"}}
