"""Declarations of a sync tree: the foreign keys the engine derives from parent and scope."""

from __future__ import annotations

import pytest

from sluice.errors import ConfigError
from sluice.sync import Entity, Field, ForeignKey, Tree
from sluice.sync.finders import Elements, Subfolders


def shop(table: str = "shops") -> Entity:
    return Entity(
        name="shop",
        table=table,
        fields=(Field("name", "text"),),
        key=("name",),
        find=Subfolders("shop.json"),
    )


def item(*foreign_keys: ForeignKey) -> Entity:
    return Entity(
        name="item",
        table="item",
        fields=(Field("shop_id", "bigint"), Field("maker_id", "bigint")),
        key=("shop_id",),
        parent="shop",
        scope="shop_id",
        foreign_keys=foreign_keys,
        find=Elements("items"),
    )


def test_the_scope_references_the_parents_table_before_the_declared_keys() -> None:
    tree = Tree("s", (shop(table="all_shops"), item(ForeignKey("maker_id", "maker", "set null"))))

    assert tree.references(tree["item"]) == (
        ForeignKey("shop_id", "all_shops", "cascade"),
        ForeignKey("maker_id", "maker", "set null"),
    )
    assert tree.references(tree["shop"]) == ()


def test_declaring_the_scope_key_again_is_an_error() -> None:
    with pytest.raises(ConfigError, match="entity 'item': 'shop_id' references the parent already"):
        item(ForeignKey("shop_id", "shops"))
