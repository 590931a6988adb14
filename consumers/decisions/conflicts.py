"""What a conflict says: the fields both systems changed since the last sync, the value each holds now and when
each record changed — the same words whichever side's event found it, so a pair's conflict is one error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cdc.mapping.model import TableMapping
from cdc.pair import System, other


def describe(mapping: TableMapping, source: System, conflicts: list[tuple[tuple[str, ...], str]],
             prints: tuple[Mapping[str, Any], Mapping[str, Any]], now: tuple[Mapping[str, Any], Mapping[str, Any]],
             rows: tuple[Mapping[str, Any], Mapping[str, Any]], keys: tuple[str, str]) -> tuple[str, str]:
    """(message, detail) of a conflict found deciding a change of `source`; `conflicts` are the (source columns,
    destination column) pairs both systems changed (no source column: a constant; several: a lookup's); `prints`
    (the fingerprints as last synced), `now` (the mapped values now) and `rows` are (source side, destination
    side); `keys` is the pair's (ERP key, CRM key). The message is one line, fields ERP side first, values
    canonical, the last synced value as the ERP held it; the detail adds the records and how to resolve it."""
    by_system = {source: 0, other(source): 1}
    changed = {system: _when(rows[by_system[system]].get(mapping.side(system).modified_on))
               for system in ("erp", "crm")}
    parts, lines = [], []
    for scols, dcol in conflicts:
        columns = {source: scols, other(source): (dcol,)}
        held = {system: _held(now[by_system[system]], names) for system, names in columns.items()}
        last = _held(prints[by_system["erp"]], columns["erp"])
        now_erp, now_crm = held["erp"], held["crm"]
        label = f"{_label(columns['erp'])} ↔ {_label(columns['crm'])}"
        parts.append(f"{label}: ERP {now_erp!r} (changed {changed['erp']}) vs CRM {now_crm!r} "
                     f"(changed {changed['crm']}), last synced {last!r}")
        lines.append(f"  {label}: last synced {last!r}; the ERP now holds {now_erp!r}, the CRM {now_crm!r}")
    message = "conflict on " + "; ".join(parts)
    erp_key, crm_key = keys
    detail = "\n".join([
        f"{mapping.name}: ERP {mapping.erp.table} {erp_key} (changed {changed['erp']}) and CRM {mapping.crm.table} "
        f"{crm_key} (changed {changed['crm']}) both changed these fields since their last sync:",
        *lines,
        "Keep one side's values with `cdc resolve ID --keep erp` or `--keep crm` (ID: this error's number), or the "
        "Keep buttons of the dashboard's Errors page; or make both sides agree: the error then closes by itself."])
    return message, detail


def _held(values: Mapping[str, Any], columns: tuple[str, ...]) -> Any:
    """What the columns hold: one column's value, several columns' values as a list, None without a column."""
    if len(columns) == 1:
        return values.get(columns[0])
    return [values.get(column) for column in columns] if columns else None


def _label(columns: tuple[str, ...]) -> str:
    return "+".join(columns) if columns else "None"


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo is not None else value
        return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo is not None else "")
    return "at an unknown time" if value is None else str(value)
