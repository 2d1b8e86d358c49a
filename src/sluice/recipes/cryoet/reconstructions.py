"""Tomograms and annotations, below a run's voxel spacing, with their authors, shapes, files and
method links."""

from __future__ import annotations

from sluice.recipes.cryoet import values as v
from sluice.recipes.cryoet.columns import (
    ID,
    B,
    D,
    F,
    I,
    T,
    authors,
    dates,
    fk,
)
from sluice.sync import Entity, Field
from sluice.sync.finders import Elements, Files

TOMOGRAM = Entity(
    name="tomogram",
    table="tomogram",
    parent="tomogram_voxel_spacing",
    scope="tomogram_voxel_spacing_id",
    key=(
        "deposition_id",
        "processing",
        "processing_software",
        "reconstruction_method",
        "run_id",
        "tomogram_voxel_spacing_id",
    ),
    find=Files("Tomograms/*/tomogram_metadata.json"),
    foreign_keys=(
        fk("run_id", "run"),
        fk("deposition_id", "deposition"),
        fk("alignment_id", "alignment", "set null"),
    ),
    flag="tomograms",
    fields=(
        Field("alignment_id", ID, v.alignment_by_path("alignment_metadata_path")),
        Field("deposition_id", ID, v.j("deposition_id"), nullable=False),
        Field("run_id", ID, v.run_row_id),
        Field("tomogram_voxel_spacing_id", ID),
        Field("name", T, v.j("run_name")),
        Field("size_x", I, v.j("size.x"), nullable=False),
        Field("size_y", I, v.j("size.y"), nullable=False),
        Field("size_z", I, v.j("size.z"), nullable=False),
        Field("voxel_spacing", F, v.j("voxel_spacing"), nullable=False),
        Field(
            "fiducial_alignment_status",
            T,
            v.fiducial_status,
            nullable=False,
            choices=("FIDUCIAL", "NON_FIDUCIAL"),
        ),
        Field(
            "reconstruction_method",
            T,
            v.reconstruction_method,
            nullable=False,
            choices=("SART", "Fourier_Space", "SIRT", "WBP", "Unknown"),
        ),
        Field(
            "processing",
            T,
            v.j("processing"),
            nullable=False,
            choices=("denoised", "filtered", "raw", "filtered_even", "filtered_odd"),
        ),
        Field("tomogram_version", F, v.j("tomogram_version")),
        Field("processing_software", T, v.j("processing_software")),
        Field(
            "reconstruction_software", T, v.or_unknown("reconstruction_software"), nullable=False
        ),
        Field("is_portal_standard", B, v.or_false("is_standardized")),
        Field("is_author_submitted", B, v.is_author_submitted),
        Field("is_visualization_default", B, v.or_false("is_visualization_default")),
        Field("s3_omezarr_dir", T, v.s3_of(v.j("omezarr_dir"))),
        Field("https_omezarr_dir", T, v.https_of(v.j("omezarr_dir"))),
        Field("file_size_omezarr", F, v.size_of(v.j("omezarr_dir"))),
        Field("s3_mrc_file", T, v.s3_of(v.j("mrc_file"))),
        Field("https_mrc_file", T, v.https_of(v.j("mrc_file"))),
        Field("file_size_mrc", F, v.size_of(v.j("mrc_file"))),
        Field("scale0_dimensions", T, v.scale(0)),
        Field("scale1_dimensions", T, v.scale(1)),
        Field("scale2_dimensions", T, v.scale(2)),
        Field("ctf_corrected", B, v.or_false("ctf_corrected")),
        Field("offset_x", I, v.j("offset.x"), nullable=False),
        Field("offset_y", I, v.j("offset.y"), nullable=False),
        Field("offset_z", I, v.j("offset.z"), nullable=False),
        Field("key_photo_url", T, v.https_key_photo("key_photo.snapshot")),
        Field("key_photo_thumbnail_url", T, v.https_key_photo("key_photo.thumbnail")),
        Field("neuroglancer_config", T, v.neuroglancer_config),
        Field("publications", T),
        Field("related_database_entries", T),
        Field("deposition_date", D, v.j("dates.deposition_date")),
        Field("release_date", D, v.j("dates.release_date")),
        Field("last_modified_date", D, v.j("dates.last_modified_date")),
    ),
)

TOMOGRAM_AUTHOR = authors(
    "tomogram", "tomogram_authors", order_from_json=False, statuses_default=None, kaggle=False
)

ANNOTATION = Entity(
    name="annotation",
    table="annotation",
    parent="tomogram_voxel_spacing",
    scope="tomogram_voxel_spacing_id",
    key=("run_id", "deposition_id", "annotation_ingest_id"),
    find=Files("Annotations/*/*[0-9].json"),
    foreign_keys=(
        fk("run_id", "run"),
        fk("deposition_id", "deposition"),
    ),
    flag="annotations",
    fields=(
        Field("run_id", ID, v.run_row_id),
        Field("deposition_id", ID, v.j("deposition_id")),
        Field("tomogram_voxel_spacing_id", ID),
        Field("s3_metadata_path", T, v.s3_of(v.own_path), nullable=False),
        Field("https_metadata_path", T, v.https_of(v.own_path), nullable=False),
        Field("annotation_publication", T, v.j("annotation_publications")),
        Field("annotation_method", T, v.j("annotation_method"), nullable=False),
        Field("annotation_ingest_id", T, v.j("annotation_ingest_id"), nullable=False),
        Field("ground_truth_status", B, v.or_false("ground_truth_status")),
        Field("object_id", T, v.j("annotation_object.id"), nullable=False),
        Field("object_name", T, v.j("annotation_object.name"), nullable=False),
        Field("object_description", T, v.j("annotation_object.description")),
        Field("object_state", T, v.j("annotation_object.state")),
        Field("object_count", I, v.j("object_count")),
        Field("confidence_precision", F, v.j("confidence.precision")),
        Field("confidence_recall", F, v.j("confidence.recall")),
        Field("ground_truth_used", T, v.j("confidence.ground_truth_used")),
        Field("annotation_software", T, v.j("annotation_software")),
        Field("is_curator_recommended", B, v.or_false("is_curator_recommended")),
        Field(
            "method_type",
            T,
            v.j("method_type"),
            nullable=False,
            choices=("manual", "automated", "hybrid", "simulated"),
        ),
        *dates(),
    ),
)

ANNOTATION_SHAPE = Entity(
    name="annotation_shape",
    table="annotation_shape",
    parent="annotation",
    scope="annotation_id",
    key=("annotation_id", "shape_type"),
    find=Elements("files", distinct="shape"),
    flag="annotations",
    fields=(
        Field("annotation_id", ID, nullable=False),
        Field(
            "shape_type",
            T,
            v.j("shape"),
            choices=(
                "SegmentationMask",
                "OrientedPoint",
                "Point",
                "InstanceSegmentation",
                "InstanceSegmentationMask",
                "Mesh",
                "GlobalCaption",
                "AnnotationCaption",
            ),
        ),
    ),
)

ANNOTATION_FILE = Entity(
    name="annotation_file",
    table="annotation_file",
    parent="annotation_shape",
    scope="annotation_shape_id",
    key=("format", "tomogram_voxel_spacing_id", "annotation_shape_id"),
    find=Elements("files", whole=True, same=("shape", "shape_type")),
    foreign_keys=(
        fk("tomogram_voxel_spacing_id", "tomogram_voxel_spacing"),
        fk("alignment_id", "alignment", "set null"),
    ),
    flag="annotations",
    fields=(
        Field("alignment_id", ID, v.alignment_by_path("alignment_metadata_path")),
        Field("annotation_shape_id", ID, nullable=False),
        Field("tomogram_voxel_spacing_id", ID, v.parent_id("tomogram_voxel_spacing")),
        Field("format", T, v.j("format"), nullable=False),
        Field("s3_path", T, v.s3_of(v.j("path")), nullable=False),
        Field("https_path", T, v.https_of(v.j("path")), nullable=False),
        Field("file_size", F, v.size_of(v.j("path"))),
        Field("is_visualization_default", B, v.or_false("is_visualization_default")),
        Field(
            "source",
            T,
            v.annotation_file_source,
            choices=("dataset_author", "community", "portal_standard"),
        ),
    ),
)

ANNOTATION_AUTHOR = authors(
    "annotation", "annotation_authors", order_from_json=False, statuses_default=False, kaggle=True
)

ANNOTATION_METHOD_LINK = Entity(
    name="annotation_method_link",
    table="annotation_method_link",
    parent="annotation",
    scope="annotation_id",
    key=("annotation_id", "link"),
    find=Elements("method_links"),
    flag="annotation_method_links",
    fields=(
        Field("annotation_id", ID, nullable=False),
        Field(
            "link_type",
            T,
            v.j("link_type"),
            nullable=False,
            choices=("documentation", "models_weights", "other", "source_code", "website"),
        ),
        Field("name", T, v.j("custom_name")),
        Field("link", T, v.j("link"), nullable=False),
    ),
)
