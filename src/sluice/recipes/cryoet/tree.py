"""The CryoET portal hierarchy as a sync tree (declarations only).

Entities, natural keys, stale scopes and computed fields follow reference/notes/seeds-cryoet.md
§1–§3 and docs/cryoet-reference.md §5. Deliberate differences from the original importer, for
safety: natural keys are backed by unique constraints and foreign keys cascade in the database;
an alignment's deletion sets the references to it to NULL instead of deleting the tomograms and
annotation files that point at it; per-section parameters are keyed by (tiltseries, z_index), so
a missing frame cannot collapse them.
"""

from __future__ import annotations

from sluice.recipes.cryoet.datasets import (
    DATASET,
    DATASET_AUTHOR,
    DATASET_FUNDING,
    DEPOSITION,
    DEPOSITION_AUTHOR,
    DEPOSITION_TYPE,
)
from sluice.recipes.cryoet.reconstructions import (
    ANNOTATION,
    ANNOTATION_AUTHOR,
    ANNOTATION_FILE,
    ANNOTATION_METHOD_LINK,
    ANNOTATION_SHAPE,
    TOMOGRAM,
    TOMOGRAM_AUTHOR,
)
from sluice.recipes.cryoet.runs import (
    ALIGNMENT,
    FRAME,
    FRAME_ACQUISITION_FILE,
    GAIN_FILE,
    IDENTIFIED_OBJECT,
    PER_SECTION_ALIGNMENT_PARAMETERS,
    PER_SECTION_PARAMETERS,
    RUN,
    TILTSERIES,
    TOMOGRAM_VOXEL_SPACING,
)
from sluice.sync import Tree

SCHEMA = "cryoet"

#: Dependency order: a parent before its children; frames before per-section parameters;
#: tiltseries before alignments; alignments before tomograms and annotation files.
TREE = Tree(
    schema=SCHEMA,
    entities=(
        DEPOSITION,
        DEPOSITION_AUTHOR,
        DEPOSITION_TYPE,
        DATASET,
        DATASET_AUTHOR,
        DATASET_FUNDING,
        RUN,
        FRAME_ACQUISITION_FILE,
        FRAME,
        GAIN_FILE,
        TILTSERIES,
        PER_SECTION_PARAMETERS,
        ALIGNMENT,
        PER_SECTION_ALIGNMENT_PARAMETERS,
        IDENTIFIED_OBJECT,
        TOMOGRAM_VOXEL_SPACING,
        TOMOGRAM,
        TOMOGRAM_AUTHOR,
        ANNOTATION,
        ANNOTATION_SHAPE,
        ANNOTATION_FILE,
        ANNOTATION_AUTHOR,
        ANNOTATION_METHOD_LINK,
    ),
)
