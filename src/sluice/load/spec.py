"""Declarations of target tables: what a recipe or a project file says, and nothing more.

A `TableSpec` names the columns in file order, the natural key, the write mode and the serving
view. The load machinery (`sluice.load`) reads these declarations; it never needs to know which
recipe wrote them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sluice import schedule
from sluice.errors import ConfigError
from sluice.patterns import compile_pattern

WriteMode = Literal["append", "upsert", "replace"]
BadRows = Literal["fail_file", "reject"]
IndexMethod = Literal["btree", "hash"]
ServingKind = Literal["incremental", "matview"]

WRITE_MODES: tuple[WriteMode, ...] = ("append", "upsert", "replace")
BAD_ROWS: tuple[BadRows, ...] = ("fail_file", "reject")
SERVING_KINDS: tuple[ServingKind, ...] = ("incremental", "matview")

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Types a column may declare. Anything else is refused up front rather than passed to the server.
_TYPE = re.compile(
    r"^(smallint|integer|bigint|int|int2|int4|int8|real|double precision|float4|float8|boolean|"
    r"text|date|timestamp|timestamptz|timestamp with time zone|timestamp without time zone|"
    r"jsonb|uuid|bytea|numeric(\(\d+(,\s*\d+)?\))?|varchar\(\d+\)|character varying\(\d+\))$"
)
_TEXT_TYPES = ("text", "varchar", "character varying")
_SIZES = re.compile(r"\((\d+)(?:,\s*(\d+))?\)")
#: PostgreSQL's largest varchar length and numeric precision.
MAX_VARCHAR = 10_485_760
MAX_NUMERIC = 1000
#: Names sluice keeps for itself (internal columns, session settings).
RESERVED_PREFIX = "sluice_"


def _check_type_size(column: str, declared: str) -> None:
    """Refuse sizes PostgreSQL would refuse, when the configuration is read."""
    match = _SIZES.search(declared)
    if match is None:
        return
    first = int(match.group(1))
    if declared.startswith(("varchar", "character varying")):
        if not 1 <= first <= MAX_VARCHAR:
            raise ConfigError(
                f"column {column!r}: {declared} must have a length within 1..{MAX_VARCHAR:,}"
            )
        return
    scale = int(match.group(2)) if match.group(2) else 0
    if not 1 <= first <= MAX_NUMERIC or scale > first:
        raise ConfigError(
            f"column {column!r}: {declared} must have a precision within 1..{MAX_NUMERIC} and a "
            "scale no larger than it"
        )


def check_identifier(name: str, what: str) -> str:
    """Return `name` if it is a plain lower-case SQL identifier, else raise ConfigError."""
    if not _IDENT.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a valid name: use lower-case letters, digits and _ "
            "(at most 63 characters, not starting with a digit)"
        )
    return name


@dataclass(frozen=True)
class Column:
    """One column of a target table."""

    name: str
    type: str
    nullable: bool = True

    def __post_init__(self) -> None:
        check_identifier(self.name, "column")
        if self.name.startswith(RESERVED_PREFIX):
            raise ConfigError(
                f"column {self.name!r}: names starting with {RESERVED_PREFIX!r} are sluice's own "
                "(its internal columns and settings); choose another name"
            )
        if not _TYPE.match(self.type.lower().strip()):
            raise ConfigError(f"column {self.name!r}: unsupported type {self.type!r}")
        _check_type_size(self.name, self.type.lower())

    @property
    def is_text(self) -> bool:
        return self.type.lower().startswith(_TEXT_TYPES)

    @classmethod
    def parse(cls, text: str) -> Column:
        """Parse ``"name type [not null]"``, the short form used in project files."""
        words = text.strip().split()
        if len(words) < 2:
            raise ConfigError(f"column {text!r}: expected 'name type [not null]'")
        nullable = True
        if [w.lower() for w in words[-2:]] == ["not", "null"]:
            nullable = False
            words = words[:-2]
        return cls(name=words[0], type=" ".join(words[1:]).lower(), nullable=nullable)


@dataclass(frozen=True)
class Index:
    """An index on the serving view."""

    columns: tuple[str, ...]
    unique: bool = False
    method: IndexMethod = "btree"


@dataclass(frozen=True)
class ServingView:
    """The copy of a table that readers use, with its indexes; readers never see it half
    changed.

    ``incremental`` (the default): a view over the table and the rows each run's loads held
    back as they were; the declared indexes are built on the table once, in bulk, and the
    held rows are released in one transaction at the end of the run. ``matview``: a
    materialized view refreshed concurrently after each run that changed the table; it must
    have a unique btree index without a WHERE clause (``REFRESH ... CONCURRENTLY`` requires
    one)."""

    name: str
    indexes: tuple[Index, ...] = ()
    kind: ServingKind = "incremental"

    def __post_init__(self) -> None:
        check_identifier(self.name, "view")
        if self.kind not in SERVING_KINDS:
            raise ConfigError(
                f"serving copy {self.name!r}: kind must be one of {', '.join(SERVING_KINDS)}, "
                f"got {self.kind!r}"
            )
        if self.kind == "matview" and not any(
            ix.unique and ix.method == "btree" for ix in self.indexes
        ):
            raise ConfigError(
                f"view {self.name!r} needs a unique btree index to be refreshed concurrently"
            )


@dataclass(frozen=True)
class CsvFormat:
    """How the bytes of an object are read. Quote and escape are the same character, as in
    PostgreSQL's CSV default; an unquoted empty field is NULL and ``""`` is an empty string."""

    delimiter: str = ","
    quote: str = '"'
    header: bool = False

    def __post_init__(self) -> None:
        for name, value in (("delimiter", self.delimiter), ("quote", self.quote)):
            # COPY takes a single one-byte character: "é" is one character but two bytes.
            if len(value.encode()) != 1 or value in "\r\n":
                raise ConfigError(f"format {name} must be one single-byte character, got {value!r}")
        if self.delimiter == self.quote:
            raise ConfigError("format delimiter and quote must differ")


@dataclass(frozen=True)
class TableSpec:
    """A target table: its columns in file order, its natural key and how loads write to it."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    #: Columns updated when an upsert finds an existing key. Empty means every file column that
    #: is not part of the key.
    values: tuple[str, ...] = ()
    mode: WriteMode = "upsert"
    #: Columns not present in the file, set per feed (e.g. GLAM's ``app_id``).
    constants: tuple[Column, ...] = ()
    #: A ``bigint`` identity primary key that sluice adds, or None for no surrogate key.
    surrogate: str | None = "id"
    serving: ServingView | None = None
    format: CsvFormat = field(default_factory=CsvFormat)
    on_bad_rows: BadRows = "fail_file"
    #: In ``reject`` mode, a file with more bad rows than this is errored as a whole.
    max_rejects: int = 1000
    #: Whether an object with no rows is a valid (empty) load rather than an error.
    allow_empty: bool = False
    schema: str = "public"
    #: Heap fill factor; leaving room on each page lets updates stay on the page (HOT).
    fillfactor: int = 90
    #: Name of the unique constraint on the key (default ``<table>_key``).
    key_name: str | None = None

    def __post_init__(self) -> None:
        check_identifier(self.name, "table")
        check_identifier(self.schema, "schema")
        names = [c.name for c in self.all_columns]
        if len(set(names)) != len(names):
            raise ConfigError(f"table {self.name!r}: a column is declared twice")
        if self.surrogate is not None:
            check_identifier(self.surrogate, "surrogate key")
            if self.surrogate in names:
                raise ConfigError(f"table {self.name!r}: {self.surrogate!r} is the surrogate key")
        if self.mode not in WRITE_MODES:
            raise ConfigError(f"table {self.name!r}: mode must be one of {', '.join(WRITE_MODES)}")
        if self.on_bad_rows not in BAD_ROWS:
            raise ConfigError(f"table {self.name!r}: on_bad_rows must be one of {BAD_ROWS}")
        if self.mode == "upsert" and not self.key:
            raise ConfigError(f"table {self.name!r}: mode 'upsert' needs a key")
        for col in (*self.key, *self.values):
            if col not in names:
                raise ConfigError(f"table {self.name!r}: {col!r} is not a column")
        if set(self.values) & set(self.key):
            raise ConfigError(f"table {self.name!r}: a key column cannot be a value column")
        if not 10 <= self.fillfactor <= 100:
            raise ConfigError(f"table {self.name!r}: fillfactor must be within 10..100")
        if self.mode == "upsert" and self.surrogate is None:
            raise ConfigError(f"table {self.name!r}: mode 'upsert' needs a surrogate key")
        if self.key_name is not None:
            check_identifier(self.key_name, "constraint")
        if self.serving is not None and self.serving.name == self.name:
            raise ConfigError(
                f"table {self.name!r}: its serving view needs a name of its own (e.g. "
                f"'view_{self.name}')"
            )
        if self.serving is not None and self.serving.kind == "incremental" and not self.surrogate:
            raise ConfigError(
                f"table {self.name!r}: an incremental serving copy is kept by the surrogate "
                "key, which this table has not; declare serving kind 'matview'"
            )

    @property
    def constraint(self) -> str:
        """Name of the unique constraint on the natural key."""
        return self.key_name or f"{self.name[:59]}_key"

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Every column of the table except the surrogate key: constants first, then the file's."""
        return (*self.constants, *self.columns)

    @property
    def file_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def value_columns(self) -> tuple[str, ...]:
        if self.values:
            return self.values
        return tuple(c for c in self.file_columns if c not in self.key)

    def column(self, name: str) -> Column:
        for col in self.all_columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A plain-data form, stored on the ledger so `sluice status` can show the declaration."""
        return {
            "schema": self.schema,
            "name": self.name,
            "mode": self.mode,
            "key": list(self.key),
            "values": list(self.value_columns),
            "columns": [
                f"{c.name} {c.type}{'' if c.nullable else ' not null'}" for c in self.columns
            ],
            "constants": [c.name for c in self.constants],
            "on_bad_rows": self.on_bad_rows,
            "serving_view": self.serving.name if self.serving else None,
            "serving": self.serving.kind if self.serving else None,
        }

    def declaration(self) -> dict[str, Any]:
        """The whole declaration as plain data; `from_declaration` rebuilds it exactly, so
        that a worker on another machine loads a feed as it was registered."""
        return asdict(self)

    @classmethod
    def from_declaration(cls, data: dict[str, Any]) -> TableSpec:
        try:
            serving = data.get("serving")
            return cls(
                **{
                    **data,
                    "columns": tuple(Column(**c) for c in data["columns"]),
                    "constants": tuple(Column(**c) for c in data.get("constants", ())),
                    "key": tuple(data.get("key", ())),
                    "values": tuple(data.get("values", ())),
                    "format": CsvFormat(**data.get("format", {})),
                    "serving": None
                    if serving is None
                    else ServingView(
                        name=serving["name"],
                        indexes=tuple(
                            Index(
                                columns=tuple(ix["columns"]),
                                unique=ix["unique"],
                                method=ix["method"],
                            )
                            for ix in serving["indexes"]
                        ),
                        # A declaration registered before serving kinds existed was a view.
                        kind=serving.get("kind", "matview"),
                    ),
                }
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"a registered table declaration is incomplete: {exc}") from exc


@dataclass(frozen=True)
class Feed:
    """A registered source for one target: where objects are, which keys match, the
    constant column values its loads carry, and when and how its work is done. Registered in
    ``sluice.feeds``."""

    name: str
    table: TableSpec
    source: str
    pattern: str
    constants: dict[str, str] = field(default_factory=dict)
    #: How often the source is scanned: an interval ("30s", "5m") or a cron expression.
    schedule: str = schedule.DEFAULT
    #: Units processed one at a time, in key order (change-tracking files need this).
    ordered: bool = False
    #: At most this many units of the feed in hand at once (None: no limit).
    max_active: int | None = None

    def __post_init__(self) -> None:
        if not self.name or any(ch.isspace() for ch in self.name):
            raise ConfigError(f"feed name {self.name!r} must be a non-empty word")
        try:
            compile_pattern(self.pattern)
        except ConfigError as exc:
            raise ConfigError(f"feed {self.name!r}: {exc}") from exc
        declared = {c.name for c in self.table.constants}
        if set(self.constants) != declared:
            raise ConfigError(
                f"feed {self.name!r}: constants {sorted(self.constants)} do not match the "
                f"table's constant columns {sorted(declared)}"
            )
        try:
            schedule.parse(self.schedule)
        except ConfigError as exc:
            raise ConfigError(f"feed {self.name!r}: {exc}") from exc
        if self.max_active is not None and not 1 <= self.max_active <= MAX_ACTIVE:
            raise ConfigError(
                f"feed {self.name!r}: max_active must be within 1..{MAX_ACTIVE}, "
                f"got {self.max_active}"
            )

    def options(self) -> dict[str, Any]:
        """What ``sluice.feeds.options`` keeps of the feed beyond its own columns."""
        return {"constants": dict(self.constants), "table": self.table.declaration()}

    @classmethod
    def from_registration(
        cls,
        *,
        name: str,
        source: str,
        pattern: str,
        options: dict[str, Any],
        schedule_text: str,
        ordered: bool,
        max_active: int | None,
    ) -> Feed:
        """Rebuild a feed from its row in ``sluice.feeds``."""
        if "table" not in options or "columns" not in options["table"]:
            raise ConfigError(
                f"feed {name!r} was registered by an older sluice without its declaration; "
                "run the command that declares it once more"
            )
        return cls(
            name=name,
            table=TableSpec.from_declaration(options["table"]),
            source=source,
            pattern=pattern,
            constants=dict(options.get("constants", {})),
            schedule=schedule_text,
            ordered=ordered,
            max_active=max_active,
        )


#: The largest per-feed concurrency limit.
MAX_ACTIVE = 1000
