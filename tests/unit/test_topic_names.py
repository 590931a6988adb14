"""Which topic carries each mapped table: our naming by default, a Debezium connector's by a pattern, or one name
per table; one topic never carries both systems."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from cdc.errors import ConfigError
from cdc.mapping.load import load_mapping_file
from cdc.settings import DEFAULT_MAPPING_FILE, Settings
from cdc.topics.names import table_topics
from consumers.incoming import Routes

MAPPINGS = load_mapping_file(DEFAULT_MAPPING_FILE)


def settings(**values: object) -> Settings:
    return Settings.model_construct().model_copy(update={"topic_prefix": "cdc", **values})


def test_by_default_topics_are_prefix_system_table() -> None:
    found = {(t.system, t.table): t.topic for t in table_topics(settings(), MAPPINGS)}
    assert found[("erp", "customer")] == "cdc.erp.customer" and found[("crm", "account")] == "cdc.crm.account"
    assert len(found) == len(MAPPINGS.tables("erp")) + len(MAPPINGS.tables("crm"))  # each table once


def test_debezium_naming_by_pattern_and_single_tables_by_name() -> None:
    s = Settings(erp_topic="erpdb.{schema}.{table}", topic_names={"crm.account": "legacy.accounts"})
    assert s.topic("erp", "customer") == "erpdb.public.customer"
    assert s.topic("erp", "customer", "sales") == "erpdb.sales.customer"
    assert s.topic("crm", "account") == "legacy.accounts"
    assert s.topic("crm", "contact") == f"{s.topic_prefix}.crm.contact"
    routes = Routes(s, MAPPINGS)
    assert routes.by_topic["erpdb.public.customer"] == "erp" and routes.by_topic["legacy.accounts"] == "crm"


def test_the_schema_comes_from_the_mapping_file(tmp_path) -> None:
    spec = yaml.safe_load(DEFAULT_MAPPING_FILE.read_text())
    spec["mappings"][0]["erp"]["schema"] = "finance"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(spec))
    named = table_topics(settings(erp_topic="e.{schema}.{table}"), load_mapping_file(path))
    found = {t.table: t.topic for t in named if t.system == "erp"}
    assert found[spec["mappings"][0]["erp"]["table"]] == "e.finance.currency"
    assert found["customer"] == "e.public.customer"


@pytest.mark.parametrize("values", [{"erp_topic": "x.{tabel}"}, {"crm_topic": "x.{"},
                                    {"topic_names": {"customer": "x"}}, {"topic_names": {"hr.staff": "x"}}])
def test_unknown_placeholders_and_names_are_refused(values: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)


def test_one_topic_for_both_systems_is_refused() -> None:
    with pytest.raises(ConfigError, match="both the ERP and the CRM"):
        Routes(Settings(erp_topic="all.{table}", crm_topic="all.{table}"), MAPPINGS)
