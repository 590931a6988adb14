from __future__ import annotations

from typing import Any

import pytest

from cdc.errors import ConfigError
from cdc.mapping.load import default_mapping_file
from cdc.mapping.model import MappingFile
from cdc.mapping.order import dependencies, dependency_order


def mapping(name: str, depends_on: list[str] | None = None,
            lookups: list[str] | None = None) -> dict[str, Any]:
    table = name.lower().replace("-", "_")
    fields = [{"erp": "name", "crm": "name"}]
    fields += [{"erp": f"{lookup.lower()}_ref", "crm": f"{lookup.lower()}_id", "lookup": lookup}
               for lookup in lookups or []]
    return {"name": name, "depends_on": depends_on or [], "fields": fields,
            "erp": {"table": table, "key": "no", "modified_on": "modified_at"},
            "crm": {"table": table, "key": "id", "modified_on": "modifiedon"}}


def order(*mappings: dict[str, Any]) -> list[str]:
    return [m.name for m in dependency_order(MappingFile.model_validate({"mappings": list(mappings)}))]


def test_the_standard_mappings_sync_in_the_documented_order():
    assert [m.name for m in dependency_order(default_mapping_file())] == [
        "CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT",
        "ITEM-PRODUCT"]


def test_the_order_does_not_depend_on_the_file_order_of_dependents():
    assert order(mapping("CONTACTS", ["CUSTOMER"]), mapping("CUSTOMER", ["SALESPEOPLE"]),
                 mapping("SALESPEOPLE")) == ["SALESPEOPLE", "CUSTOMER", "CONTACTS"]


def test_ties_keep_file_order():
    assert order(mapping("B"), mapping("A"), mapping("C")) == ["B", "A", "C"]
    assert order(mapping("Z", ["A"]), mapping("Y"), mapping("A")) == ["Y", "A", "Z"]


def test_lookups_are_dependencies_too():
    assert order(mapping("CUSTOMER", lookups=["SALESPEOPLE"]), mapping("SALESPEOPLE")) == [
        "SALESPEOPLE", "CUSTOMER"]


def test_dependencies_are_declared_ones_then_lookups_without_repeats_or_self():
    m = MappingFile.model_validate({"mappings": [
        mapping("A", ["C", "B"], lookups=["B", "D", "A"]), mapping("B"), mapping("C"), mapping("D")]})
    assert dependencies(m.get("A")) == ["C", "B", "D"]
    assert [x.name for x in dependency_order(m)] == ["B", "C", "D", "A"]


def test_a_cycle_is_named():
    with pytest.raises(ConfigError, match="cycle: CUSTOMER -> CONTACTS -> CUSTOMER$"):
        order(mapping("CUSTOMER", ["CONTACTS"]), mapping("CONTACTS", lookups=["CUSTOMER"]))


def test_a_longer_cycle_is_named_without_the_mappings_that_only_wait_for_it():
    with pytest.raises(ConfigError) as caught:
        order(mapping("FREE"), mapping("WAITING", ["A"]), mapping("A", ["B"]), mapping("B", ["C"]),
              mapping("C", ["A"]))
    assert str(caught.value) == "mappings depend on each other in a cycle: A -> B -> C -> A"


def test_a_mapping_that_depends_on_itself_is_a_cycle():
    with pytest.raises(ConfigError, match="cycle: A -> A"):
        order(mapping("A", ["A"]))
