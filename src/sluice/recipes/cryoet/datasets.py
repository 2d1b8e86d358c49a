"""Depositions and datasets, the roots of the CryoET tree, with their authors, types and funding."""

from __future__ import annotations

from sluice.recipes.cryoet import values as v
from sluice.recipes.cryoet.columns import (
    ID,
    F,
    I,
    T,
    authors,
    dates,
    fk,
    prefixes,
)
from sluice.sync import Entity, Field
from sluice.sync.finders import Elements, Subfolders

DEPOSITION = Entity(
    name="deposition",
    table="deposition",
    identity=v.j("deposition_identifier"),
    key=(),
    find=Subfolders("deposition_metadata.json", below="depositions_metadata"),
    delete_stale=False,
    flag="depositions",
    fields=(
        Field("title", T, v.j("deposition_title"), nullable=False),
        Field("description", T, v.j("deposition_description"), nullable=False),
        Field("tag", T, v.j("tag")),
        Field("deposition_publications", T, v.j("cross_references.publications")),
        Field("related_database_entries", T, v.j("cross_references.related_database_entries")),
        *dates(),
        Field("key_photo_url", T, v.https_key_photo("key_photos.snapshot")),
        Field("key_photo_thumbnail_url", T, v.https_key_photo("key_photos.thumbnail")),
    ),
)

DEPOSITION_AUTHOR = authors(
    "deposition", "depositions", order_from_json=True, statuses_default=None, kaggle=False
)

DEPOSITION_TYPE = Entity(
    name="deposition_type",
    table="deposition_type",
    parent="deposition",
    scope="deposition_id",
    key=("deposition_id", "type"),
    find=Elements("deposition_types"),
    flag="depositions",
    fields=(
        Field("deposition_id", ID, nullable=False),
        Field("type", T, v.trimmed, choices=("annotation", "dataset", "tomogram")),
    ),
)

DATASET = Entity(
    name="dataset",
    table="dataset",
    identity=v.j("dataset_identifier"),
    key=(),
    find=Subfolders("dataset_metadata.json"),
    delete_stale=False,
    foreign_keys=(fk("deposition_id", "deposition"),),
    fields=(
        Field("deposition_id", ID, v.j("deposition_id"), nullable=False),
        Field("title", T, v.j("dataset_title"), nullable=False),
        Field("description", T, v.j("dataset_description"), nullable=False),
        Field("assay_label", T, v.j("assay.name")),
        Field("assay_ontology_id", T, v.j("assay.id")),
        Field("development_stage_name", T, v.j("development_stage.name")),
        Field("development_stage_ontology_id", T, v.j("development_stage.id")),
        Field("disease_name", T, v.j("disease.name")),
        Field("disease_ontology_id", T, v.j("disease.id")),
        Field("organism_name", T, v.j("organism.name")),
        Field("organism_taxid", I, v.j("organism.taxonomy_id")),
        Field("tissue_name", T, v.j("tissue.name")),
        Field("tissue_id", T, v.j("tissue.id")),
        Field("cell_name", T, v.j("cell_type.name")),
        Field("cell_type_id", T, v.j("cell_type.id")),
        Field("cell_strain_name", T, v.j("cell_strain.name")),
        Field("cell_strain_id", T, v.j("cell_strain.id")),
        Field("cell_component_name", T, v.j("cell_component.name")),
        Field("cell_component_id", T, v.j("cell_component.id")),
        Field(
            "sample_type",
            T,
            v.j("sample_type"),
            choices=(
                "cell",
                "cell_line",
                "in_silico",
                "in_vitro",
                "organelle",
                "organism",
                "organoid",
                "other",
                "primary_cell_culture",
                "tissue",
                "virus",
            ),
        ),
        Field("sample_preparation", T, v.j("sample_preparation")),
        Field("grid_preparation", T, v.j("grid_preparation")),
        Field("other_setup", T, v.j("other_setup")),
        Field("key_photo_url", T, v.https_key_photo("key_photos.snapshot")),
        Field("key_photo_thumbnail_url", T, v.https_key_photo("key_photos.thumbnail")),
        *dates(),
        Field("dataset_publications", T, v.dataset_publications),
        Field("related_database_entries", T, v.j("cross_references.related_database_entries")),
        *prefixes(),
        Field("file_size", F, v.size_of_folder),
    ),
)

DATASET_AUTHOR = authors(
    "dataset", "dataset_authors", order_from_json=True, statuses_default=None, kaggle=True
)

DATASET_FUNDING = Entity(
    name="dataset_funding",
    table="dataset_funding",
    parent="dataset",
    scope="dataset_id",
    key=("dataset_id", "funding_agency_name", "grant_id"),
    find=Elements("funding"),
    flag="dataset_funding",
    fields=(
        Field("dataset_id", ID, nullable=False),
        Field("funding_agency_name", T, v.j("funding_agency_name")),
        Field("grant_id", T, v.j("grant_id")),
    ),
)
