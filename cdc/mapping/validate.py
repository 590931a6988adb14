"""Checking a mapping file against the live catalogs of the ERP and the CRM.

Every problem is one line naming the mapping and the field or setting, e.g.
`mapping CUSTOMER, field active <-> accountid: erp column active (bool) and crm column accountid (uuid) do not
fit`, and where in the file it sits (`Problem.at`: the path of keys, which `cdc.mapping.load.locate` turns into
file:line:col). Types fit when they belong to one family (numbers, dates and times, ...) or when either side is
text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cdc.catalog import Column, Table
from cdc.mapping.model import (
    LIKE_OPS,
    AllOf,
    AnyOf,
    Condition,
    FieldMapping,
    Filter,
    FormatDate,
    FormatNumber,
    MappingFile,
    Round,
    TableMapping,
    Transform,
    other,
)
from cdc.pair import SYSTEMS, System
from cdc.values import NUMBER_KINDS, TIME_KINDS, coerce, convert

Tables = Mapping[str, Table]
Path = tuple[str | int, ...]

_TEXT_ONLY_OPS = ("starts_with", "contains", *LIKE_OPS)


@dataclass(frozen=True)
class Problem:
    at: Path
    """Where in the file: keys and list positions from the top, e.g. ('mappings', 3, 'fields', 11)."""
    text: str


def validate_against_catalog(mapping_file: MappingFile, erp_tables: Tables, crm_tables: Tables) -> list[str]:
    """Problems that stop the mapping file from working on these tables (empty: none)."""
    return [p.text for p in catalog_problems(mapping_file, erp_tables, crm_tables)]


def catalog_problems(mapping_file: MappingFile, erp_tables: Tables, crm_tables: Tables) -> list[Problem]:
    """`validate_against_catalog` with where each problem sits in the file."""
    catalogs: dict[System, Tables] = {"erp": erp_tables, "crm": crm_tables}
    problems: list[Problem] = []
    for n, m in enumerate(mapping_file.mappings):
        problems += _mapping_problems(m, ("mappings", n), mapping_file, catalogs)
    return problems


def _table(m: TableMapping, system: System, catalogs: dict[System, Tables]) -> Table | None:
    side = m.side(system)
    table = catalogs[system].get(side.table)
    return table if table is not None and table.schema == side.schema_ else None


def _mapping_problems(m: TableMapping, at: Path, mapping_file: MappingFile,
                      catalogs: dict[System, Tables]) -> list[Problem]:
    problems: list[Problem] = []
    tables: dict[System, Table | None] = {system: _table(m, system, catalogs) for system in SYSTEMS}
    for system in SYSTEMS:
        side = m.side(system)
        if tables[system] is None:
            problems.append(Problem((*at, system, "table"),
                                    f"mapping {m.name}: {system} table {side.schema_}.{side.table} not found"))
    for system in SYSTEMS:
        table = tables[system]
        if table is not None:
            problems += [Problem((*at, system, *where), f"mapping {m.name}, {line}")
                         for where, line in _side_problems(m, system, table, tables[other(system)])]
    for n, f in enumerate(m.fields):
        if f.enabled:
            problems += [Problem((*at, "fields", n, *where), f"mapping {m.name}, field {f.label}: {line}")
                         for where, line in _field_problems(f, m, tables, mapping_file, catalogs)]
    for n, match in enumerate(m.match_on):
        columns = {system: _column(tables[system], system, getattr(match, system)) for system in SYSTEMS}
        problems += [Problem((*at, "match_on", n), f"mapping {m.name}, match_on {match.erp} <-> {match.crm}: {line}")
                     for line in _pair_problems(columns)]
    return problems


def _column(table: Table | None, system: System, name: str) -> Column | str | None:
    """The column, or a problem line when the table exists without it, or None when the table is missing."""
    if table is None:
        return None
    column = table.columns.get(name)
    return column if column is not None else f"{system} column {name!r} not found in table {table.name}"


def _side_problems(m: TableMapping, system: System, table: Table,
                   partner: Table | None) -> list[tuple[Path, str]]:
    """(where under the side, line) per problem."""
    side = m.side(system)
    problems: list[tuple[Path, str]] = []
    where = f"{system} table {table.name}"
    if not table.primary_key:
        problems.append((("table",), f"{where}: has no primary key (a primary key is required)"))
    missing = [c for c in side.key_columns if c not in table.columns]
    for column in missing:
        problems.append((("key",), f"{system} key: column {column!r} not found in table {table.name}"))
    if not missing and table.primary_key and list(side.key_columns) != table.primary_key:
        declared = f"column {side.key}" if isinstance(side.key, str) else f"[{', '.join(side.key)}]"
        problems.append((("key",), f"{system} key: {declared} is not the primary key ({', '.join(table.primary_key)}) "
                                   f"of table {table.name}" + (
                                       f": name its columns in that order, key: [{', '.join(table.primary_key)}]"
                                       if len(table.primary_key) > 1 else "")))
    key = table.columns.get(side.key_columns[0]) if not side.composite else None
    modified = table.columns.get(side.modified_on)
    if modified is None:
        problems.append((("modified_on",), f"{system} modified_on: column {side.modified_on!r} not found in table "
                                           f"{table.name}"))
    elif modified.kind not in ("timestamp", "timestamptz"):
        problems.append((("modified_on",), f"{system} modified_on: column {side.modified_on} is "
                                           f"{modified.describe()}, not a timestamp"))
    problems += [(("filter", *path), f"{system} filter on {line}")
                 for path, line in _filter_problems(side.filter, table)]
    for name, value in side.defaults.items():
        column = table.columns.get(name)
        if column is None:
            problems.append((("defaults", name), f"{system} defaults: column {name!r} not found in table "
                                                 f"{table.name}"))
        else:
            problems += [(("defaults", name), f"{system} defaults, {name}: {line}")
                         for line in _value_problems(value, column)]
    if m.allows(other(system)):
        if side.new_key.strategy == "columns":
            if not missing:  # a column not found is the problem to fix first
                problems += [(("key",), f"{system} new_key: {line}")
                             for line in _key_columns_unfilled(m, system, table)]
        elif key is not None:
            problems += [(("new_key", *path), f"{system} new_key: {line}")
                         for path, line in _new_key_problems(m, system, key, partner)]
        problems += [(("table",), f"{where}: {line}") for line in _unfilled_columns(m, system, table)]
    return problems


def _located_conditions(f: Filter | None, at: Path = ()) -> Iterator[tuple[Path, Condition]]:
    """Every condition of a filter with its path under the filter."""
    if f is None:
        return
    if isinstance(f, Condition):
        yield at, f
    elif isinstance(f, AllOf | AnyOf):
        name = "all" if isinstance(f, AllOf) else "any"
        for n, sub in enumerate(f.all if isinstance(f, AllOf) else f.any):
            yield from _located_conditions(sub, (*at, name, n))
    else:
        yield from _located_conditions(f.not_, (*at, "not"))


def _filter_problems(f: Filter | None, table: Table) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    for at, c in _located_conditions(f):
        column = table.columns.get(c.field)
        if column is None:
            problems.append((at, f"{c.field}: column not found in table {table.name}"))
            continue
        if c.op in ("is_null", "not_null"):
            continue
        if column.kind is None:
            problems.append((at, f"{c.field}: columns of type {column.type_name} cannot be filtered"))
        elif c.op in _TEXT_ONLY_OPS and column.kind != "text":
            problems.append(((*at, "op"), f"{c.field}: '{c.op}' applies to text, not {column.describe()}"))
        elif c.op not in LIKE_OPS:  # a pattern is no value of the column (it may be longer, hold wildcards)
            for value in c.value if isinstance(c.value, list) else [c.value]:
                problems += [((*at, "value"), f"{c.field}: {line}") for line in _value_problems(value, column)]
    return problems


def _value_problems(value: Any, column: Column) -> list[str]:
    """Whether a value from the file (constant, default, filter or map value) can be written into `column`: as the
    sync writes it (`cdc.values.coerce`), and not longer than the column (where the sync would cut it)."""
    if value is None:
        return [] if column.nullable else [f"null cannot go into NOT NULL column {column.name}"]
    if column.kind is None:
        return []
    try:
        written = coerce(value, column.type_name, scale=column.scale)
    except ValueError:
        return [f"{value!r} does not convert to {column.describe()} (column {column.name})"]
    if isinstance(written, str) and column.max_length is not None and len(written) > column.max_length:
        return [f"{value!r} is longer than column {column.name} ({column.describe()})"]
    return []


def _new_key_problems(m: TableMapping, system: System, key: Column,
                      partner: Table | None) -> list[tuple[Path, str]]:
    new_key = m.side(system).new_key
    problems: list[tuple[Path, str]] = []
    if new_key.strategy == "series":
        refused = _refuses_a_drawn_value(key)
        if refused:
            problems.append((("strategy",), f"strategy series: key {key.name} {refused}"))
        elif key.default is None and not key.identity:
            problems.append((("strategy",), f"strategy series needs a default on key {key.name} (a sequence, "
                                            "an expression or a function making the next number); it has none"))
        return problems
    if new_key.strategy == "uuid":
        if not (key.kind == "uuid" or key.kind == "text" and (key.max_length or 36) >= 36):
            problems.append((("strategy",), f"strategy uuid needs a uuid key or text of 36 characters, "
                                            f"not {key.name} {key.describe()}"))
        return problems
    if key.kind != "text":
        problems.append((("strategy",), f"strategy {new_key.strategy} makes text keys, not {key.describe()} "
                                        f"({key.name})"))
    elif key.max_length is not None and key.max_length < new_key.length:
        problems.append((("length",), f"keys of {new_key.length} characters do not fit key {key.name} "
                                      f"({key.describe()})"))
    if new_key.strategy == "field" and partner is not None and new_key.field not in partner.columns:
        problems.append((("field",), f"field {new_key.field!r} not found in the {other(system)} table "
                                     f"{partner.name}"))
    return problems


def _refuses_a_drawn_value(column: Column) -> str:
    """Why `column` refuses a value its default made before the insert ("" when it takes one)."""
    if column.identity == "a":
        return "is GENERATED ALWAYS AS IDENTITY, which refuses a key chosen before the insert (make it BY DEFAULT)"
    return "is a generated column" if column.generated else ""


def _key_columns_unfilled(m: TableMapping, system: System, table: Table) -> list[str]:
    """Strategy `columns` takes each key column from what a creation writes into it, else from the column's own
    default, drawn before the write."""
    problems = []
    for name in m.drawn_key_columns(system):
        column = table.columns[name]
        refused = _refuses_a_drawn_value(column)
        if refused:
            problems.append(f"strategy columns: key column {name}, which no field mapping or default fills, "
                            f"{refused}")
        elif column.default is None and not column.identity:
            problems.append(f"strategy columns: no field mapping from the {other(system)}, no entry in defaults "
                            f"and no column default fills key column {name}")
    return problems


def _unfilled_columns(m: TableMapping, system: System, table: Table) -> list[str]:
    """NOT NULL columns without a default that nothing fills: records created on this side would fail."""
    side = m.side(system)
    filled = {*side.key_columns, *table.primary_key, *side.defaults}
    filled.update(column for f in m.fields_from(other(system)) for column in f.columns(system))
    return [f"column {c.name} is NOT NULL without a default and no field, constant or default fills it "
            f"(records created in {system} would fail)"
            for c in table.columns.values() if not c.nullable and not c.has_default and c.name not in filled]


def _field_problems(f: FieldMapping, m: TableMapping, tables: dict[System, Table | None],
                    mapping_file: MappingFile, catalogs: dict[System, Tables]) -> list[tuple[Path, str]]:
    """(where under the field, line) per problem."""
    named: dict[System, list[Column | str | None]] = {
        system: [_column(tables[system], system, name) for name in f.columns(system)] for system in SYSTEMS}
    problems: list[tuple[Path, str]] = [((system,), c) for system, cs in named.items() for c in cs
                                        if isinstance(c, str)]
    found = {system: cs[0] for system, cs in named.items() if len(cs) == 1 and isinstance(cs[0], Column)}
    if f.constant is not None:
        for column in found.values():
            problems += [(("constant",), f"constant: {line}") for line in _value_problems(f.constant, column)]
        return problems
    if f.lookup is not None:
        for system in SYSTEMS:
            problems += _lookup_problems(f, m, system, named[system], mapping_file, catalogs)
        if f.on_lookup_failure == "clear":
            columns = {system: [c for c in cs if isinstance(c, Column)] for system, cs in named.items()}
            problems += [(("on_lookup_failure",), line) for line in _clear_problems(f, m, columns)]
        return problems
    if f.value_map is not None:
        if "erp" in found:
            problems += [(("value_map",), f"value map key: {line}") for key in f.value_map
                         for line in _value_problems(key, found["erp"])]
        if "crm" in found:
            problems += [(("value_map",), f"value map value: {line}") for value in f.value_map.values()
                         for line in _value_problems(value, found["crm"])]
        if len(found) == 2:
            problems += [(("value_map",), line) for line in _value_map_problems(f, m, found)]
        return problems
    if len(found) == 2:
        problems += [((), line) for line in _pair_problems(found)]
        for source in SYSTEMS:
            if f.flows_from(source) and m.allows(source):
                transforms = f.transforms(other(source))
                problems += [((f"to_{other(source)}",), line) for line in
                             _transform_problems(transforms, source, found[source], found[other(source)])]
        if f.normalize:
            problems += [(("normalize",), f"normalize applies to text, not {system} column {c.name} "
                                          f"({c.describe()})") for system, c in found.items() if c.kind != "text"]
    return problems


def _clear_problems(f: FieldMapping, m: TableMapping, found: dict[System, list[Column]]) -> list[str]:
    """`clear` writes null into each destination column, or the side's default for it: a NOT NULL column needs
    that default."""
    problems = []
    for source in SYSTEMS:
        destination = other(source)
        if not (f.flows_from(source) and m.allows(source)):
            continue
        for column in found[destination]:
            if not column.nullable and column.name not in m.side(destination).defaults:
                problems.append(f"on_lookup_failure clear would write null into NOT NULL {destination} column "
                                f"{column.name}: give it a value in the mapping's {destination} defaults")
    return problems


def _value_map_problems(f: FieldMapping, m: TableMapping, columns: dict[System, Column]) -> list[str]:
    """What would fail at run time on a value map whose entries each fit their columns: a boolean source column
    whose map lacks true or false fails every record holding it; two entries naming one source value (`'true'`
    and `yes` on a boolean column, `'30'` and `'30.0'` on a number) leave the map ambiguous; and transforms
    before the map take the source column's values (as for any field)."""
    assert f.value_map is not None
    problems: list[str] = []
    for source in SYSTEMS:
        if not (f.flows_from(source) and m.allows(source)):
            continue
        column = columns[source]
        written = list(f.value_map) if source == "erp" else [v for v in f.value_map.values() if v is not None]
        what = "key" if source == "erp" else "value"
        seen: dict[Any, Any] = {}
        for entry in written:
            try:
                value = convert(entry, column.kind) if column.kind is not None else entry
            except ValueError:
                continue  # reported above, as not converting
            if value in seen and seen[value] != entry:
                problems.append(f"value map {what}s {seen[value]!r} and {entry!r} are the same {source} value "
                                f"{value!r} ({source} column {column.name}, {column.describe()})")
            seen.setdefault(value, entry)
        if column.kind == "bool":
            for value in (True, False):
                if value not in seen:
                    problems.append(f"value map has no {what} for {str(value).lower()}: every record whose {source} "
                                    f"column {column.name} ({column.describe()}) holds {str(value).lower()} would "
                                    "fail")
        transforms = f.transforms(other(source))
        if transforms:
            problems += _transform_problems(transforms, source, column, None)
    return problems


def _lookup_problems(f: FieldMapping, m: TableMapping, system: System, columns: list[Column | str | None],
                     mapping_file: MappingFile, catalogs: dict[System, Tables]) -> list[tuple[Path, str]]:
    """The field's `system` columns hold keys of the looked-up mapping's `system` side: one column per key column,
    in the key's order, each able to hold its key column's values. (where under the field, line) per problem."""
    assert f.lookup is not None
    looked_up = mapping_file.get(f.lookup)
    key = looked_up.side(system).key_columns
    names = f.columns(system)
    if len(names) != len(key):
        named = f"[{', '.join(names)}]" if len(names) > 1 else names[0]
        return [((system,), f"lookup to {f.lookup}: its {system} key has {len(key)} column"
                            f"{'s' if len(key) > 1 else ''} ({', '.join(key)}) and the field names {len(names)} "
                            f"({named}): name one {system} column per key column, in the key's order")]
    target = _table(looked_up, system, catalogs)
    if target is None:
        return []
    problems: list[tuple[Path, str]] = []
    for column, name in zip(columns, key, strict=True):
        key_column = target.columns.get(name)
        if isinstance(column, Column) and key_column is not None:
            problems += [(("lookup",), line) for line in _key_problems(system, column, f.lookup, target, key_column)]
    return problems


def _key_problems(system: System, column: Column, lookup: str, table: Table, key: Column) -> list[str]:
    if not _fit(column, key):
        return [f"{system} column {column.name} ({column.describe()}) cannot hold keys of {lookup} "
                f"({table.name}.{key.name}: {key.describe()})"]
    key_width = {"text": key.max_length, "uuid": 36}.get(key.kind or "", column.max_length)
    if column.kind == "text" and column.max_length is not None and (
            key_width is None or key_width > column.max_length):
        return [f"{system} column {column.name} ({column.describe()}) is shorter than keys of {lookup} "
                f"({table.name}.{key.name}: {key.describe()})"]
    return []


def _pair_problems(columns: Mapping[System, Column | str | None]) -> list[str]:
    problems = [c for c in columns.values() if isinstance(c, str)]
    erp, crm = columns.get("erp"), columns.get("crm")
    if isinstance(erp, Column) and isinstance(crm, Column) and not _fit(erp, crm):
        problems.append(f"erp column {erp.name} ({erp.describe()}) and crm column {crm.name} "
                        f"({crm.describe()}) have incompatible types")
    return problems


def _fit(a: Column, b: Column) -> bool:
    if a.type_name == b.type_name or "text" in (a.kind, b.kind):
        return True
    if a.kind is None or b.kind is None:
        return False
    return a.kind == b.kind or {a.kind, b.kind} <= NUMBER_KINDS or {a.kind, b.kind} <= TIME_KINDS


def _transform_problems(transforms: list[Transform], source: System, read: Column,
                        written: Column | None) -> list[str]:
    """Transforms take the source column's value (or the previous transform's) in turn; what they make goes into
    `written` (None: into a value map, whose keys compare as text)."""
    problems: list[str] = []
    kind = read.kind
    for t in transforms:
        if isinstance(t, Round | FormatNumber):
            needs = NUMBER_KINDS
        elif isinstance(t, FormatDate):
            needs = TIME_KINDS | {"text"}
        else:
            needs = frozenset({"text"})
        if kind is not None and kind not in needs:
            problems.append(f"to_{other(source)} transform {t.op} cannot take {kind} values "
                            f"(from {source} column {read.name})")
        if isinstance(t, FormatNumber | FormatDate):
            kind = "text"
    if written is not None and kind == "text" and read.kind != "text" and written.kind not in ("text", None):
        problems.append(f"to_{other(source)} transforms make text, but {other(source)} column {written.name} "
                        f"is {written.describe()}")
    return problems
