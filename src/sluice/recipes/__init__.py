"""Recipes: declarations of the seed systems' tables, patterns and verbs. A recipe only declares;
the shared packages do the work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.sync.flow import Recipe


def sync_recipes() -> Mapping[str, Recipe]:
    """The recipes a ``[syncs.NAME]`` feed may name, imported when first needed."""
    from sluice.recipes.cryoet.source import CryoetSync

    return {"cryoet": CryoetSync}
