"""The load generator's choice of changes, without a database."""

from __future__ import annotations

import random
import uuid
from collections import Counter

from cdc.demo.workload import KEYS, Changes, Sample


def sample(size: int = 50) -> Sample:
    keys = {key: [f"{key[1]}-{i}" if key[0] == "erp" else uuid.UUID(int=i + 1) for i in range(size)]
            for key in KEYS}
    return Sample(keys=keys, deletable={("erp", "customer"): keys["erp", "customer"][:5],
                                        ("crm", "account"): keys["crm", "account"][:5]},
                  salespeople=["AH", "JB"], currencies={"EUR", "DKK"}, owners=[uuid.UUID(int=99)],
                  crm_currencies={"EUR": uuid.UUID(int=7)}, crm_units={"PCS": uuid.UUID(int=8)},
                  next_no={"customer": 51, "contact": 200, "item": 1050, "product": 1})


def test_the_same_seed_chooses_the_same_changes():
    first = Changes(random.Random(3), sample())
    second = Changes(random.Random(3), sample())
    other = Changes(random.Random(4), sample())
    a = [first.next() for _ in range(500)]
    assert a == [second.next() for _ in range(500)]
    assert a != [other.next() for _ in range(500)]


def test_mostly_updates_some_inserts_few_deletes_on_both_systems():
    changes = Changes(random.Random(1), sample(size=5000))
    made = [changes.next() for _ in range(20_000)]
    ops = Counter(op for _, _, op, _, _ in made)
    assert 0.80 < ops["update"] / len(made) < 0.88
    assert 0.10 < ops["insert"] / len(made) < 0.16
    assert 0.01 < ops["delete"] / len(made) < 0.05
    systems = Counter(system for system, *_ in made)
    assert abs(systems["erp"] - systems["crm"]) < 0.05 * len(made)
    for _, table, op, sql, args in made:
        assert sql.split()[0] == op.upper()
        assert f" {table} " in f" {sql} ".replace("(", " ")
        assert sql.count("$") >= len(args) >= 1


def test_new_records_get_the_next_numbers_and_become_candidates():
    s = sample()
    changes = Changes(random.Random(2), s)
    customer = changes.insert_customer()
    contact = changes.insert_erp_contact()
    item = changes.insert_item()
    product = changes.insert_product()
    assert customer[1][0] == "C00051" and "C00051" in s.keys["erp", "customer"]
    assert "C00051" in s.deletable["erp", "customer"]
    assert contact is not None and contact[1][0] == "CT000200"
    assert item[1][0] == "1050" and product[1][1] == "P-00001"
    assert s.next_no == {"customer": 52, "contact": 201, "item": 1051, "product": 2}


def test_deleted_records_are_no_longer_chosen():
    s = sample(size=3)
    changes = Changes(random.Random(2), s)
    deleted = set()
    for _ in range(3):
        made = changes.delete_erp_contact()
        assert made is not None
        deleted.add(made[1][0])
    assert len(deleted) == 3 and s.keys["erp", "contact"] == []
    assert changes.delete_erp_contact() is None and changes.update_erp_contact() is None
    customer = changes.delete_customer()
    assert customer is not None and customer[1][0] not in s.keys["erp", "customer"]
    assert "NOT EXISTS" in customer[0]  # only customers without contacts go
