"""Column types and shared column groups of the CryoET entities (declarations only)."""

from __future__ import annotations

from sluice.recipes.cryoet import values as v
from sluice.sync import Entity, Field, ForeignKey
from sluice.sync.finders import Elements

T = "text"
I = "integer"  # noqa: E741 - a type name, like T and F
F = "double precision"
B = "boolean"
D = "date"
ID = "bigint"


def fk(column: str, table: str, on_delete: str = "cascade") -> ForeignKey:
    return ForeignKey(column, table, "cascade" if on_delete == "cascade" else "set null")


def dates() -> tuple[Field, ...]:
    return (
        Field("deposition_date", D, v.j("dates.deposition_date"), nullable=False),
        Field("release_date", D, v.j("dates.release_date"), nullable=False),
        Field("last_modified_date", D, v.j("dates.last_modified_date"), nullable=False),
    )


def authors(
    parent: str, flag: str, *, order_from_json: bool, statuses_default: bool | None, kaggle: bool
) -> Entity:
    """Authors of depositions, datasets, tomograms and annotations: the `authors` list of the
    parent's document, the same columns, keyed by name within the parent."""
    scope = f"{parent}_id"

    def status(name: str) -> Field:
        getter = v.or_false(name) if statuses_default is False else v.j(name)
        return Field(name, B, getter)

    order = v.position_or("author_list_order") if order_from_json else v.position
    fields = (
        Field(scope, ID, nullable=False),
        Field("name", T, v.j("name"), nullable=False),
        Field("orcid", T, v.j("ORCID")),
        Field("kaggle_id", T, v.j("kaggle_id") if kaggle else None),
        Field("email", T, v.j("email")),
        Field("affiliation_name", T, v.j("affiliation_name")),
        Field("affiliation_address", T, v.j("affiliation_address")),
        Field("affiliation_identifier", T, v.j("affiliation_identifier")),
        status("corresponding_author_status"),
        status("primary_author_status"),
        Field("author_list_order", I, order, nullable=False),
    )
    return Entity(
        name=f"{parent}_author",
        table=f"{parent}_author",
        parent=parent,
        scope=scope,
        key=(scope, "name"),
        find=Elements("authors"),
        flag=flag,
        fields=fields,
    )


def prefixes() -> tuple[Field, ...]:
    return (
        Field("s3_prefix", T, v.s3_of(v.own_path), nullable=False),
        Field("https_prefix", T, v.https_of(v.own_path), nullable=False),
    )
