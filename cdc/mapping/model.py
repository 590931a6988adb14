"""The mapping model: the single, validated description of what syncs with what.

A mapping file (YAML) holds table mappings. Each pairs an ERP table with a CRM table, says which way records flow,
which records are in scope (filters), how records are matched and coupled, what happens on conflicts and deletes,
and how each field is carried across (field mappings with transforms, value maps, constants and lookups).
"""

from __future__ import annotations

import re
import string
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cdc.mapping.patterns import PatternError
from cdc.mapping.patterns import check as check_pattern
from cdc.pair import Pair, System, other

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAPPING_NAME = re.compile(r"^[A-Z][A-Z0-9_-]{0,62}$")

Direction = Literal["both", "to_crm", "to_erp"]
ConflictPolicy = Literal["fail", "erp-wins", "crm-wins", "newest-wins", "merge"]
DeletionPolicy = Literal["propagate", "uncouple", "restore", "fail"]
AfterMatch = Literal["source", "erp", "crm", "newest", "none"]
LookupFailure = Literal["wait", "fail", "clear"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, underscore; at most 63)")
    return value


def identifiers(names: list[str], *, empty: str, repeated: str) -> str | list[str]:
    """Columns named as a list (a key, a lookup's reference): plain identifiers, none twice; a list of one is that
    column. `empty` and `repeated` are the messages for an empty list and a column named twice."""
    if not names:
        raise ValueError(empty)
    for name in names:
        identifier(name)
    if len(set(names)) < len(names):
        raise ValueError(f"{repeated}: {names}")
    return names[0] if len(names) == 1 else names


def flows(direction: Direction, source: System) -> bool:
    """Whether `direction` carries changes from `source` to the other system."""
    return direction == "both" or direction == f"to_{other(source)}"


# ---------------------------------------------------------------- filters

FilterOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null", "starts_with",
                   "contains", "like", "not_like", "ilike", "not_ilike"]
LIKE_OPS = ("like", "not_like", "ilike", "not_ilike")


class Condition(Frozen):
    """One comparison: `field op value`. NULL compares false except with `ne`, `not_in`, `not_like`,
    `not_ilike`, `is_null`."""

    field: str = Field(description="Column of this side's table.")
    op: FilterOp = Field("eq", description="Comparison (docs/mappings.md, 'Filters').")
    value: Any = Field(None, description="A scalar; a non-empty list for in/not_in; none for is_null/not_null; "
                                         "a LIKE pattern for like/not_like/ilike/not_ilike.")
    escape: str = Field("\\", description="like/not_like/ilike/not_ilike: the character that makes the next one "
                                           "literal (default backslash; empty: none).")

    _check_field = field_validator("field")(classmethod(lambda cls, v: identifier(v)))

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.escape != "\\" and self.op not in LIKE_OPS:
            raise ValueError(f"filter on {self.field}: escape applies to like, not_like, ilike and not_ilike")
        if self.op in LIKE_OPS:
            if not isinstance(self.value, str):
                raise ValueError(f"filter on {self.field}: '{self.op}' needs a text pattern (got {self.value!r})")
            try:
                check_pattern(self.value, self.escape)
            except PatternError as exc:
                raise ValueError(f"filter on {self.field}: {exc}") from None
            return self
        if self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"filter on {self.field}: '{self.op}' needs a non-empty list")
        elif self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"filter on {self.field}: '{self.op}' takes no value")
        elif self.value is None:
            raise ValueError(f"filter on {self.field}: '{self.op}' needs a value (use is_null for NULL)")
        elif isinstance(self.value, list):
            raise ValueError(f"filter on {self.field}: '{self.op}' takes one value, not a list (in/not_in)")
        items = self.value if isinstance(self.value, list) else [self.value]
        if any(isinstance(item, dict | list) for item in items):
            raise ValueError(f"filter on {self.field}: a value must be a scalar or a list of scalars")
        if self.op in ("in", "not_in") and any(item is None for item in items):
            raise ValueError(f"filter on {self.field}: '{self.op}' values cannot be null (use is_null)")
        return self


class AllOf(Frozen):
    all: list[Filter] = Field(min_length=1, description="Every filter holds.")


class AnyOf(Frozen):
    any: list[Filter] = Field(min_length=1, description="At least one filter holds.")


class Not(Frozen):
    not_: Filter = Field(alias="not", description="The filter does not hold.")


def _filter_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in ("all", "any", "not") if key in value), "condition")
    kinds: tuple[tuple[str, type[BaseModel]], ...] = (
        ("condition", Condition), ("all", AllOf), ("any", AnyOf), ("not", Not))
    return next((kind for kind, model in kinds if isinstance(value, model)), None)


Filter = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated[AllOf, Tag("all")] | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")],
    Discriminator(
        _filter_kind,
        custom_error_type="invalid_filter",
        custom_error_message="a filter is {field, op, value}, {all: [...]}, {any: [...]} or {not: ...}",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


def filter_fields(f: Filter | None) -> list[str]:
    if f is None:
        return []
    if isinstance(f, Condition):
        return [f.field]
    if isinstance(f, AllOf):
        return [name for sub in f.all for name in filter_fields(sub)]
    if isinstance(f, AnyOf):
        return [name for sub in f.any for name in filter_fields(sub)]
    return filter_fields(f.not_)


# ---------------------------------------------------------------- transforms

class Trim(Frozen):
    """Leading and trailing whitespace removed."""

    op: Literal["trim"]


class Upper(Frozen):
    """Upper case."""

    op: Literal["upper"]


class Lower(Frozen):
    """Lower case."""

    op: Literal["lower"]


class Title(Frozen):
    """Each word capitalised."""

    op: Literal["title"]


class Replace(Frozen):
    """Every occurrence of `old` replaced by `new`."""

    op: Literal["replace"]
    old: str = Field(min_length=1, description="Text to replace.")
    new: str = Field("", description="Replacement (default: nothing).")


class RegexReplace(Frozen):
    """Every match of a Python regular expression replaced."""

    op: Literal["regex"]
    pattern: str = Field(description="Python regular expression.")
    replacement: str = Field("", description="Replacement; \\1 refers to a group.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"regex {v!r} does not compile: {exc}") from None
        return v


class Round(Frozen):
    """A number rounded half away from zero."""

    op: Literal["round"]
    digits: int = Field(2, description="Digits after the decimal point.")


class Truncate(Frozen):
    """Text cut to at most `length` characters."""

    op: Literal["truncate"]
    length: int = Field(gt=0, description="Most characters kept.")


class FormatDate(Frozen):
    """A date or timestamp (or ISO text) as text."""

    op: Literal["format_date"]
    format: str = Field("%Y-%m-%d", description="strftime format.")


class FormatNumber(Frozen):
    """A number as text."""

    op: Literal["format_number"]
    format: str = Field("{:.2f}", description="Python format string with one field, e.g. '{:,.2f}'.")

    @field_validator("format")
    @classmethod
    def _one_plain_field(cls, v: str) -> str:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(v) if name is not None]
        except ValueError as exc:
            raise ValueError(f"number format {v!r} is malformed: {exc}") from None
        if len(names) != 1 or names[0] not in ("", "0"):
            raise ValueError(f"number format {v!r} must hold exactly one '{{}}' or '{{:spec}}' field")
        return v


Transform = Annotated[
    Trim | Upper | Lower | Title | Replace | RegexReplace | Round | Truncate | FormatDate | FormatNumber,
    Field(discriminator="op"),
]

Normalisation = Annotated[Trim | Upper | Lower | Title | Truncate, Field(discriminator="op")]
"""The transforms a normalisation may use: each gives the same result when applied again, so a value written
normalised is never written again."""


# ---------------------------------------------------------------- field mappings

class FieldMapping(Frozen):
    """How one field is carried between the two tables.

    Either both `erp` and `crm` name a column, or one of them is written from `constant` (e.g. a CRM customer type
    always 3). `lookup` names another mapping: the value is a key of that mapping's table on the source side and is
    translated to the coupled partner's key; where that mapping's key has several columns, the field names as many,
    in the key's order (`erp: [item_no, unit_code]`). `value_map` translates ERP values to CRM values (and back).
    """

    erp: str | list[str] | None = Field(
        None, description="Column of the ERP table (none for a constant written into the CRM); with a lookup to a "
                          "composite key, the list of columns holding its key columns, in the key's order.")
    crm: str | list[str] | None = Field(
        None, description="Column of the CRM table (none for a constant written into the ERP); with a lookup to a "
                          "composite key, the list of columns holding its key columns, in the key's order.")
    direction: Direction = Field("both", description="Which way the field flows (within the mapping's direction).")
    constant: Any = Field(None, description="A value always written into the one column named.")
    lookup: str | None = Field(None, description="A mapping whose couplings translate this key into the partner's "
                                                 "key.")
    value_map: dict[str, Any] | None = Field(None, description="ERP value -> CRM value (read backwards towards the "
                                                               "ERP).")
    to_crm: list[Transform] = Field(default_factory=list, description="Transforms applied towards the CRM, in order.")
    to_erp: list[Transform] = Field(default_factory=list, description="Transforms applied towards the ERP, in order.")
    enabled: bool = Field(True, description="A disabled field is neither carried nor compared.")
    not_null: bool = Field(False, description="A null is not written (the destination keeps its value).")
    on_lookup_failure: LookupFailure = Field(
        "wait", description="With a lookup whose record is not coupled: wait (park), fail the record, or clear "
                            "the field and sync the rest.")
    normalize: list[Normalisation] = Field(
        default_factory=list, description="Transforms whose result both sides hold: the value is written "
                                          "normalised to the other side and back to its own.")

    @field_validator("erp", "crm", mode="before")
    @classmethod
    def _text_or_list(cls, v: Any) -> Any:
        """One error for a column that is neither a name nor a list of names (not one per member of the union)."""
        if v is not None and not isinstance(v, str | list):
            raise PydanticCustomError("string_type", "Input should be a valid string, or a list of them")
        if isinstance(v, list) and not all(isinstance(column, str) for column in v):
            raise ValueError(f"columns are names (text), not {[c for c in v if not isinstance(c, str)]}")
        return v

    @field_validator("erp", "crm")
    @classmethod
    def _plain(cls, v: str | list[str] | None) -> str | list[str] | None:
        if v is None or isinstance(v, str):
            return None if v is None else identifier(v)
        return identifiers(v, empty="a list of columns names at least one", repeated="a column is named more than once")

    @field_validator("on_lookup_failure")
    @classmethod
    def _with_lookup(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("lookup") is None:
            raise ValueError("on_lookup_failure applies to a field with a lookup")
        return v

    @field_validator("normalize")
    @classmethod
    def _plain_field(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        taken = [name for name in ("constant", "lookup", "value_map") if info.data.get(name) is not None]
        taken += [name for name in ("to_crm", "to_erp") if info.data.get(name)]
        if v and taken:
            raise ValueError(f"normalize applies to a field carried as it is, not with {' or '.join(taken)} "
                             "(both sides must be able to hold the same value)")
        return v

    @field_validator("value_map", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        """YAML reads `1:` or `true:` as non-strings; value-map keys are compared as text."""
        if isinstance(v, dict):
            return {str(key): value for key, value in v.items()}
        return v

    @model_validator(mode="after")
    def _shape(self) -> FieldMapping:
        if self.erp is None and self.crm is None:
            raise ValueError("a field mapping needs an erp or a crm column")
        if self.constant is not None:
            if self.erp is not None and self.crm is not None:
                raise ValueError("a constant field mapping names only its destination column")
            expected = "to_crm" if self.crm is not None else "to_erp"
            if self.direction == "both":
                object.__setattr__(self, "direction", expected)
            elif self.direction != expected:
                raise ValueError(f"a constant for the {'crm' if self.crm else 'erp'} column flows {expected}")
        elif self.erp is None or self.crm is None:
            raise ValueError("a field mapping without a constant needs both an erp and a crm column")
        if self.lookup is not None and self.value_map is not None:
            raise ValueError("a field mapping takes a lookup or a value map, not both")
        several = [system for system in ("erp", "crm") if len(self.columns(system)) > 1]  # type: ignore[arg-type]
        if several and self.lookup is None:
            raise ValueError(f"only a lookup names several {' and '.join(several)} columns (the key columns of "
                             "the record it references)")
        if self.value_map is not None:
            reverse = [str(v) for v in self.value_map.values()]
            if len(set(reverse)) != len(reverse) and self.direction != "to_crm":
                raise ValueError("a value map used towards the ERP must be one-to-one")
        return self

    def column(self, system: System) -> str | None:
        """The field's one column of `system` (None: a constant written into the other side). A lookup naming
        several columns has no one column: ask `columns`."""
        named = Pair(self.erp, self.crm)[system]
        if isinstance(named, list):
            raise ValueError(f"field {self.label} names several {system} columns: use columns()")
        return named

    def columns(self, system: System) -> tuple[str, ...]:
        """The field's columns of `system`: one, several (a lookup to a composite key, in its order), or none."""
        named = Pair(self.erp, self.crm)[system]
        if named is None:
            return ()
        return (named,) if isinstance(named, str) else tuple(named)

    def transforms(self, towards: System) -> list[Transform]:
        """The transforms applied to the field's value on its way towards `towards` (`to_erp` or `to_crm`)."""
        return Pair(self.to_erp, self.to_crm)[towards]

    def flows_from(self, source: System) -> bool:
        return self.enabled and flows(self.direction, source)

    @property
    def label(self) -> str:
        return f"{_names(self.erp) or '<constant>'} <-> {_names(self.crm) or '<constant>'}"


def _names(columns: str | list[str] | None) -> str | None:
    return f"[{', '.join(columns)}]" if isinstance(columns, list) else columns


# ---------------------------------------------------------------- sides and mappings

class NewKey(Frozen):
    """How the key of a record created on this side is made.

    Keys of created records are derived deterministically from the source record's key, or allocated before the
    write and announced with the creation, so a create that is replayed after a crash lands on the same row
    instead of making a duplicate.
    - `uuid`: a name-based UUID (v5) of mapping and source key;
    - `code`: `prefix` + upper-case base32 digest of mapping and source key, `length` characters in all;
    - `field`: the value of the source record's column `field` (e.g. a product number becoming an item no.),
      falling back to `code` when that value is empty or already taken;
    - `series`: the next key of the destination's own number series — the key column's default expression (a
      sequence, `'V' || lpad(nextval(...)::text, 6, '0')`, a function), evaluated on the destination before the
      write;
    - `columns`: what the creation writes into the key columns (field mappings, then the side's defaults; a key
      column neither fills takes its column's default, drawn before the write as under `series`): the strategy
      of a composite key, and the default there.
    """

    strategy: Literal["uuid", "code", "field", "series", "columns"] = Field(
        "uuid", description="uuid, code, field, series (the key column's default, evaluated before the write), or "
                            "columns (what the creation writes into the key columns, else their column defaults; "
                            "a composite key's default).")
    prefix: str = Field("", description="code (and field's fallback): text the key starts with.")
    length: int = Field(10, ge=6, le=63, description="code (and field's fallback): characters in all.")
    field: str | None = Field(None, description="field: the source column whose value becomes the key.")

    @field_validator("prefix", "length", "field")
    @classmethod
    def _not_with_series(cls, v: Any, info: ValidationInfo) -> Any:
        if info.data.get("strategy") == "series":
            raise ValueError(f"strategy series takes no {info.field_name}: the key column's default makes the key")
        return v

    @field_validator("field")
    @classmethod
    def _plain(cls, v: str | None) -> str | None:
        return None if v is None else identifier(v)

    @model_validator(mode="after")
    def _field_named(self) -> NewKey:
        if self.strategy == "field" and not self.field:
            raise ValueError("new_key strategy 'field' names the field")
        if len(self.prefix) >= self.length:
            raise ValueError(f"new_key prefix {self.prefix!r} leaves no room in {self.length} characters")
        return self


class Side(Frozen):
    """One side of a mapping: a table in one system."""

    table: str = Field(description="Table name.")
    key: str | list[str] = Field(description="Its primary key: a column, or the list of its columns in the primary "
                                             "key's order (a composite key).")
    modified_on: str = Field(description="A timestamp column the system sets on every change.")
    schema_: str = Field("public", alias="schema", description="Schema of the table.")
    filter: Filter | None = Field(None, description="Records outside never sync (docs/mappings.md, 'Filters').")
    defaults: dict[str, Any] = Field(default_factory=dict, description="Column -> value written into records "
                                                                       "created on this side.")
    new_key: NewKey = Field(default_factory=NewKey, description="How records created on this side get their key.")

    _ids = field_validator("table", "modified_on", "schema_")(classmethod(lambda cls, v: identifier(v)))

    @field_validator("key", mode="before")
    @classmethod
    def _text_or_list(cls, v: Any) -> Any:
        """One error for a key that is neither a column nor a list (not one per member of the union)."""
        if not isinstance(v, str | list):
            raise PydanticCustomError("string_type", "Input should be a valid string, or a list of them")
        if isinstance(v, list) and not all(isinstance(column, str) for column in v):
            raise ValueError(f"key columns are names (text), not {[c for c in v if not isinstance(c, str)]}")
        return v

    @field_validator("key")
    @classmethod
    def _key_columns(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, str):
            return identifier(v)
        return identifiers(v, empty="key names at least one column", repeated="key names a column more than once")

    @field_validator("new_key")
    @classmethod
    def _composite_new_key(cls, v: NewKey, info: ValidationInfo) -> NewKey:
        key = info.data.get("key")
        if isinstance(key, list) and v.strategy != "columns":
            raise ValueError(f"a composite key ({', '.join(key)}) takes new_key strategy columns (each key column "
                             f"from what the creation writes into it), not {v.strategy}")
        return v

    @model_validator(mode="after")
    def _composite_default(self) -> Side:
        if len(self.key_columns) > 1 and "new_key" not in self.model_fields_set:
            object.__setattr__(self, "new_key", NewKey(strategy="columns"))
        return self

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The key's columns, in the primary key's order (one for a single-column key)."""
        return (self.key,) if isinstance(self.key, str) else tuple(self.key)

    @property
    def composite(self) -> bool:
        return not isinstance(self.key, str)

    @field_validator("defaults")
    @classmethod
    def _default_columns(cls, v: dict[str, Any]) -> dict[str, Any]:
        for column in v:
            identifier(column)
        return v


class MatchField(Frozen):
    """A pair of columns used to find an existing partner for an uncoupled record (match-based coupling)."""

    erp: str = Field(description="ERP column.")
    crm: str = Field(description="CRM column.")
    priority: int = Field(1, description="Match fields of one priority are tried together, lowest first.")
    case_sensitive: bool = Field(False, description="Compare text with case (default: without).")

    _ids = field_validator("erp", "crm")(classmethod(lambda cls, v: identifier(v)))

    def column(self, system: System) -> str:
        return Pair(self.erp, self.crm)[system]


class TableMapping(Frozen):
    """An ERP table paired with a CRM table."""

    name: str = Field(description="Upper case letters, digits, '-' or '_'.")
    erp: Side = Field(description="The ERP table.")
    crm: Side = Field(description="The CRM table.")
    direction: Direction = Field("both", description="Which way records flow.")
    sync_only_coupled: bool = Field(True, description="Live changes of uncoupled records create no partner.")
    conflict: ConflictPolicy = Field("fail", description="Both sides changed one field since the last sync.")
    deletion: DeletionPolicy = Field("uncouple", description="A coupled record was deleted.")
    after_match: AfterMatch = Field(
        "source", description="Values after two existing records are coupled by match: the side whose change or "
                              "replay found the match (source), erp, crm, newest (by modified_on), or none.")
    match_on: list[MatchField] = Field(default_factory=list, description="Fields that couple an uncoupled record "
                                                                         "to an existing partner.")
    depends_on: list[str] = Field(default_factory=list, description="Mappings synced before this one.")
    fields: list[FieldMapping] = Field(min_length=1, description="The field mappings.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not MAPPING_NAME.match(v):
            raise ValueError(f"mapping name {v!r} must be upper case letters, digits, '-' or '_'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TableMapping:
        enabled = [f for f in self.fields if f.enabled]
        if not any(f.direction == self.direction or f.direction == "both" or self.direction == "both"
                   for f in enabled):
            raise ValueError(f"direction {self.direction} is not shared by any enabled field mapping")
        if self.after_match in ("erp", "crm") and not self.allows(self.after_match):  # type: ignore[arg-type]
            raise ValueError(f"after_match {self.after_match}: the mapping carries no values from the "
                             f"{self.after_match} (direction {self.direction})")
        for system in ("erp", "crm"):
            if not self.allows(other(system)):
                continue
            columns = [column for f in enabled if f.flows_from(other(system))
                       for column in f.columns(system)]  # type: ignore[arg-type]
            duplicates = {c for c in columns if columns.count(c) > 1}
            if duplicates:
                raise ValueError(f"{system} column(s) {sorted(duplicates)} written by more than one field mapping")
        return self

    def side(self, system: System) -> Side:
        return Pair(self.erp, self.crm)[system]

    def allows(self, source: System) -> bool:
        return flows(self.direction, source)

    def fields_from(self, source: System) -> list[FieldMapping]:
        """The enabled field mappings that carry values from `source` to the other side (do not modify)."""
        return self.carried_fields[source]

    def drawn_key_columns(self, system: System) -> tuple[str, ...]:
        """The key columns of a record created on `system` that the table's own column defaults fill, drawn before
        the write (`consumers.series`): the key under `series`; under `columns`, each key column that no field
        from the other side and no `defaults` entry fills."""
        side = self.side(system)
        if side.new_key.strategy == "series":
            return side.key_columns
        if side.new_key.strategy != "columns":
            return ()
        filled = {*side.defaults, *(column for f in self.fields_from(other(system)) for column in f.columns(system))}
        return tuple(c for c in side.key_columns if c not in filled)

    def mapped_columns(self, system: System) -> list[str]:
        """Every column of `system`'s table that any enabled field mapping reads or writes (the fingerprint;
        do not modify)."""
        return self.fingerprint_columns[system]

    @cached_property
    def carried_fields(self) -> dict[str, list[FieldMapping]]:
        """`fields_from` per system, worked out once (the mapping is frozen; the sync asks for every record)."""
        out: dict[str, list[FieldMapping]] = {}
        for system in ("erp", "crm"):
            allowed = self.allows(system)  # type: ignore[arg-type]
            out[system] = [f for f in self.fields if f.flows_from(system)] if allowed else []  # type: ignore[arg-type]
        return out

    @cached_property
    def fingerprint_columns(self) -> dict[str, list[str]]:
        """`mapped_columns` per system, worked out once."""
        out: dict[str, list[str]] = {}
        for system in ("erp", "crm"):
            seen: list[str] = []
            for f in self.fields:
                for column in f.columns(system) if f.enabled else ():  # type: ignore[arg-type]
                    if column not in seen:
                        seen.append(column)
            out[system] = seen
        return out

    def fields_writing(self, system: System) -> dict[str, list[FieldMapping]]:
        """The field mappings of each column of `system`'s table (any direction, enabled or not)."""
        return self.fields_by_column[system]

    @cached_property
    def fields_by_column(self) -> dict[str, dict[str, list[FieldMapping]]]:
        """`fields_writing` per system, worked out once."""
        out: dict[str, dict[str, list[FieldMapping]]] = {"erp": {}, "crm": {}}
        for system, by_column in out.items():
            for f in self.fields:
                for column in f.columns(system):  # type: ignore[arg-type]
                    by_column.setdefault(column, []).append(f)
        return out

    @property
    def lookups(self) -> list[str]:
        return sorted({f.lookup for f in self.fields if f.enabled and f.lookup is not None})


class MappingFile(Frozen):
    """A mapping file: `cdc mappings schema` prints its JSON Schema; docs/mappings.md is the reference."""

    version: Literal[1] = Field(1, description="The file format's version.")
    mappings: list[TableMapping] = Field(min_length=1, description="The table mappings.")

    @model_validator(mode="after")
    def _references(self) -> MappingFile:
        """Every broken reference, one per line (the loader reports each line as its own problem)."""
        names = [m.name for m in self.mappings]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        problems = [f"mapping name {n!r} used more than once" for n in duplicates]
        for m in self.mappings:
            problems += [f"mapping {m.name}, field {f.label}: lookup to unknown mapping {f.lookup!r}"
                         for f in m.fields if f.lookup is not None and f.lookup not in names]
            problems += [f"mapping {m.name}: depends_on names unknown mapping {d!r}"
                         for d in m.depends_on if d not in names]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def get(self, name: str) -> TableMapping:
        for m in self.mappings:
            if m.name == name:
                return m
        raise KeyError(name)

    def for_table(self, system: System, table: str) -> list[TableMapping]:
        """The mappings reading `table` of `system`, in file order (do not modify)."""
        return self.readers.get((system, table), [])

    @cached_property
    def readers(self) -> dict[tuple[str, str], list[TableMapping]]:
        """`for_table` for every mapped table, worked out once (asked for every change event)."""
        out: dict[tuple[str, str], list[TableMapping]] = {}
        for system in ("erp", "crm"):
            for m in self.mappings:
                out.setdefault((system, m.side(system).table), []).append(m)  # type: ignore[arg-type]
        return out

    def tables(self, system: System) -> list[str]:
        seen: list[str] = []
        for m in self.mappings:
            if m.side(system).table not in seen:
                seen.append(m.side(system).table)
        return seen
