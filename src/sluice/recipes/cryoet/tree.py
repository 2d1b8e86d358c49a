"""The CryoET portal hierarchy as a sync tree (declarations only).

Entities, natural keys, stale scopes and computed fields follow reference/notes/seeds-cryoet.md
§1–§3 and docs/cryoet-reference.md §5. Deliberate differences from the original importer, for
safety: natural keys are backed by unique constraints and foreign keys cascade in the database;
an alignment's deletion sets the references to it to NULL instead of deleting the tomograms and
annotation files that point at it; per-section parameters are keyed by (tiltseries, z_index), so
a missing frame cannot collapse them.
"""

from __future__ import annotations

from sluice.recipes.cryoet import values as v
from sluice.sync import Entity, Field, ForeignKey, Tree
from sluice.sync.finders import Elements, Files, Folders, Subfolders

SCHEMA = "cryoet"

T = "text"
I = "integer"  # noqa: E741 - a type name, like T and F
F = "double precision"
B = "boolean"
D = "date"
ID = "bigint"


def fk(column: str, table: str, on_delete: str = "cascade") -> ForeignKey:
    return ForeignKey(column, table, "cascade" if on_delete == "cascade" else "set null")


def _dates() -> tuple[Field, ...]:
    return (
        Field("deposition_date", D, v.j("dates.deposition_date"), nullable=False),
        Field("release_date", D, v.j("dates.release_date"), nullable=False),
        Field("last_modified_date", D, v.j("dates.last_modified_date"), nullable=False),
    )


def _authors(
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
        foreign_keys=(fk(scope, parent),),
        flag=flag,
        fields=fields,
    )


def _prefixes() -> tuple[Field, ...]:
    return (
        Field("s3_prefix", T, v.s3_of(v.own_path), nullable=False),
        Field("https_prefix", T, v.https_of(v.own_path), nullable=False),
    )


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
        *_dates(),
        Field("key_photo_url", T, v.https_key_photo("key_photos.snapshot")),
        Field("key_photo_thumbnail_url", T, v.https_key_photo("key_photos.thumbnail")),
    ),
)

DEPOSITION_AUTHOR = _authors(
    "deposition", "depositions", order_from_json=True, statuses_default=None, kaggle=False
)

DEPOSITION_TYPE = Entity(
    name="deposition_type",
    table="deposition_type",
    parent="deposition",
    scope="deposition_id",
    key=("deposition_id", "type"),
    find=Elements("deposition_types"),
    foreign_keys=(fk("deposition_id", "deposition"),),
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
        *_dates(),
        Field("dataset_publications", T, v.dataset_publications),
        Field("related_database_entries", T, v.j("cross_references.related_database_entries")),
        *_prefixes(),
        Field("file_size", F, v.size_of_folder),
    ),
)

DATASET_AUTHOR = _authors(
    "dataset", "dataset_authors", order_from_json=True, statuses_default=None, kaggle=True
)

DATASET_FUNDING = Entity(
    name="dataset_funding",
    table="dataset_funding",
    parent="dataset",
    scope="dataset_id",
    key=("dataset_id", "funding_agency_name", "grant_id"),
    find=Elements("funding"),
    foreign_keys=(fk("dataset_id", "dataset"),),
    flag="dataset_funding",
    fields=(
        Field("dataset_id", ID, nullable=False),
        Field("funding_agency_name", T, v.j("funding_agency_name")),
        Field("grant_id", T, v.j("grant_id")),
    ),
)

RUN = Entity(
    name="run",
    table="run",
    parent="dataset",
    scope="dataset_id",
    key=("dataset_id", "name"),
    find=Subfolders("run_metadata.json"),
    foreign_keys=(fk("dataset_id", "dataset"),),
    flag="runs",
    fields=(
        Field("dataset_id", ID, nullable=False),
        Field("name", T, v.j("run_name"), nullable=False),
        *_prefixes(),
    ),
)

FRAME_ACQUISITION_FILE = Entity(
    name="frame_acquisition_file",
    table="frame_acquisition_file",
    parent="run",
    scope="run_id",
    key=("run_id", "s3_mdoc_path"),
    find=Files("Frames/frames_metadata.json"),
    foreign_keys=(fk("run_id", "run"),),
    flag="frame_acquisition_files",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("s3_mdoc_path", T, v.s3_of(v.j("frames_acquisition_file")), nullable=False),
        Field("https_mdoc_path", T, v.https_of(v.j("frames_acquisition_file")), nullable=False),
    ),
)

FRAME = Entity(
    name="frame",
    table="frame",
    parent="run",
    scope="run_id",
    key=("run_id", "acquisition_order"),
    find=Elements("frames", source="Frames/frames_metadata.json"),
    foreign_keys=(fk("run_id", "run"), fk("deposition_id", "deposition")),
    flag="frames",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("deposition_id", ID, v.ancestor_value("dataset", "deposition_id"), nullable=False),
        Field("acquisition_order", I, v.j("acquisition_order")),
        Field("accumulated_dose", F, v.j("accumulated_dose")),
        Field("exposure_dose", F, v.j("exposure_dose")),
        Field("is_gain_corrected", B, v.j("is_gain_corrected")),
        Field("s3_frame_path", T, v.s3_of(v.j("path"))),
        Field("https_frame_path", T, v.https_of(v.j("path"))),
        Field("file_size", F, v.size_of(v.j("path"))),
    ),
)

GAIN_FILE = Entity(
    name="gain_file",
    table="gain_file",
    parent="run",
    scope="run_id",
    key=("run_id", "s3_file_path"),
    find=Files("Gains/*_gain*", parse=False),
    foreign_keys=(fk("run_id", "run"),),
    flag="gains",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("s3_file_path", T, v.s3_of(v.own_path), nullable=False),
        Field("https_file_path", T, v.https_of(v.own_path), nullable=False),
    ),
)

TILTSERIES = Entity(
    name="tiltseries",
    table="tiltseries",
    parent="run",
    scope="run_id",
    key=("run_id",),
    find=Files("TiltSeries/*/tiltseries_metadata.json", first=True),
    foreign_keys=(fk("run_id", "run"), fk("deposition_id", "deposition")),
    flag="tiltseries",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("deposition_id", ID, v.j("deposition_id")),
        Field("s3_omezarr_dir", T, v.s3_of(v.j("omezarr_dir"))),
        Field("https_omezarr_dir", T, v.https_of(v.j("omezarr_dir"))),
        Field("file_size_omezarr", F, v.size_of(v.j("omezarr_dir"))),
        Field("s3_mrc_file", T, v.s3_of(v.j("mrc_file"))),
        Field("https_mrc_file", T, v.https_of(v.j("mrc_file"))),
        Field("file_size_mrc", F, v.size_of(v.j("mrc_file"))),
        Field("s3_angle_list", T, v.s3_of(v.first_sibling("*.rawtlt", "*.tlt"))),
        Field("https_angle_list", T, v.https_of(v.first_sibling("*.rawtlt", "*.tlt"))),
        Field("acceleration_voltage", I, v.j("acceleration_voltage"), nullable=False),
        Field(
            "spherical_aberration_constant", F, v.j("spherical_aberration_constant"), nullable=False
        ),
        Field(
            "microscope_manufacturer",
            T,
            v.j("microscope.manufacturer"),
            nullable=False,
            choices=("FEI", "TFS", "JEOL", "SIMULATED"),
        ),
        Field("microscope_model", T, v.j("microscope.model"), nullable=False),
        Field(
            "microscope_energy_filter",
            T,
            v.j("microscope_optical_setup.energy_filter"),
            nullable=False,
        ),
        Field("microscope_phase_plate", T, v.j("microscope_optical_setup.phase_plate")),
        Field("microscope_image_corrector", T, v.j("microscope_optical_setup.image_corrector")),
        Field("microscope_additional_info", T, v.j("microscope.additional_info")),
        Field("camera_manufacturer", T, v.j("camera.manufacturer"), nullable=False),
        Field("camera_model", T, v.j("camera.model"), nullable=False),
        Field("tilt_min", F, v.rounded("tilt_range.min"), nullable=False),
        Field("tilt_max", F, v.rounded("tilt_range.max"), nullable=False),
        Field("tilt_range", F, v.tilt_range, nullable=False),
        Field("tilt_step", F, v.j("tilt_step"), nullable=False),
        Field("tilting_scheme", T, v.j("tilting_scheme"), nullable=False),
        Field("tilt_axis", F, v.j("tilt_axis"), nullable=False),
        Field("total_flux", F, v.j("total_flux"), nullable=False),
        Field("data_acquisition_software", T, v.j("data_acquisition_software"), nullable=False),
        Field("related_empiar_entry", T, v.j("related_empiar_entry")),
        Field("binning_from_frames", F, v.j("binning_from_frames")),
        Field("tilt_series_quality", I, v.j("tilt_series_quality"), nullable=False),
        Field("is_aligned", B, v.or_false("is_aligned"), nullable=False),
        Field("pixel_spacing", F, v.j("pixel_spacing"), nullable=False),
        Field("aligned_tiltseries_binning", I, v.j("aligned_tiltseries_binning")),
        Field("size_x", I, v.j("size.x")),
        Field("size_y", I, v.j("size.y")),
        Field("size_z", I, v.j("size.z")),
    ),
)

PER_SECTION_PARAMETERS = Entity(
    name="per_section_parameters",
    table="per_section_parameters",
    parent="tiltseries",
    scope="tiltseries_id",
    key=("tiltseries_id", "z_index"),
    find=Elements("per_section_parameter"),
    foreign_keys=(
        fk("tiltseries_id", "tiltseries"),
        fk("run_id", "run"),
        fk("frame_id", "frame", "set null"),
    ),
    flag="tiltseries",
    fields=(
        Field("frame_id", ID, v.frame_id),
        Field("run_id", ID, v.run_row_id, nullable=False),
        Field("tiltseries_id", ID, nullable=False),
        Field("z_index", I, v.j("z_index"), nullable=False),
        Field("raw_angle", F, v.j("raw_angle"), nullable=False),
        Field("astigmatic_angle", F, v.j("astigmatic_angle")),
        Field("major_defocus", F, v.j("major_defocus")),
        Field("minor_defocus", F, v.j("minor_defocus")),
        Field("max_resolution", F, v.j("max_resolution")),
        Field("phase_shift", F, v.j("phase_shift")),
    ),
)

ALIGNMENT = Entity(
    name="alignment",
    table="alignment",
    parent="run",
    scope="run_id",
    key=("run_id", "deposition_id"),
    find=Files("Alignments/*/alignment_metadata.json"),
    foreign_keys=(
        fk("run_id", "run"),
        fk("deposition_id", "deposition"),
        fk("tiltseries_id", "tiltseries", "set null"),
    ),
    flag="alignments",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("deposition_id", ID, v.j("deposition_id")),
        Field("tiltseries_id", ID, v.tiltseries_by_path),
        Field("alignment_type", T, v.j("alignment_type"), choices=("LOCAL", "GLOBAL")),
        Field(
            "alignment_method",
            T,
            v.alignment_method,
            choices=("projection_matching", "patch_tracking", "fiducial_based"),
        ),
        Field("volume_x_dimension", F, v.j("volume_dimension.x")),
        Field("volume_y_dimension", F, v.j("volume_dimension.y")),
        Field("volume_z_dimension", F, v.j("volume_dimension.z")),
        Field("volume_x_offset", F, v.j("volume_offset.x")),
        Field("volume_y_offset", F, v.j("volume_offset.y")),
        Field("volume_z_offset", F, v.j("volume_offset.z")),
        Field("x_rotation_offset", F, v.j("x_rotation_offset")),
        Field("tilt_offset", F, v.j("tilt_offset")),
        Field("affine_transformation_matrix", T, v.pg_array_text("affine_transformation_matrix")),
        Field("s3_alignment_metadata", T, v.s3_of(v.own_path)),
        Field("https_alignment_metadata", T, v.https_of(v.own_path)),
        Field("is_portal_standard", B, v.or_false("is_portal_standard")),
    ),
)

PER_SECTION_ALIGNMENT_PARAMETERS = Entity(
    name="per_section_alignment_parameters",
    table="per_section_alignment_parameters",
    parent="alignment",
    scope="alignment_id",
    key=("alignment_id", "z_index"),
    find=Elements("per_section_alignment_parameters"),
    foreign_keys=(fk("alignment_id", "alignment"),),
    flag="alignments",
    fields=(
        Field("alignment_id", ID, nullable=False),
        Field("z_index", I, v.j("z_index"), nullable=False),
        Field("x_offset", F, v.j("x_offset")),
        Field("y_offset", F, v.j("y_offset")),
        Field("volume_x_rotation", F, v.j("volume_x_rotation")),
        Field("in_plane_rotation", T, v.compact_json("in_plane_rotation")),
        Field("tilt_angle", F, v.j("tilt_angle")),
    ),
)

IDENTIFIED_OBJECT = Entity(
    name="identified_object",
    table="identified_object",
    parent="run",
    scope="run_id",
    key=("run_id", "object_id"),
    find=Files("IdentifiedObjects/identified_objects.json", each=""),
    foreign_keys=(fk("run_id", "run"),),
    flag="identified_objects",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("object_id", T, v.j("object_id"), nullable=False),
        Field("object_name", T, v.j("object_name"), nullable=False),
        Field("object_description", T, v.j("object_description")),
        Field("object_state", T, v.j("object_state")),
    ),
)

TOMOGRAM_VOXEL_SPACING = Entity(
    name="tomogram_voxel_spacing",
    table="tomogram_voxel_spacing",
    parent="run",
    scope="run_id",
    key=("run_id", "voxel_spacing"),
    find=Folders(r"VoxelSpacing(?P<spacing>[0-9]+(?:\.[0-9]*)?)", below="Reconstructions"),
    foreign_keys=(fk("run_id", "run"),),
    flag="tomogram_voxel_spacing",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("voxel_spacing", F, lambda item: float(item.groups["spacing"]), nullable=False),
        *_prefixes(),
    ),
)

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
        fk("tomogram_voxel_spacing_id", "tomogram_voxel_spacing"),
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

TOMOGRAM_AUTHOR = _authors(
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
        fk("tomogram_voxel_spacing_id", "tomogram_voxel_spacing"),
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
        *_dates(),
    ),
)

ANNOTATION_SHAPE = Entity(
    name="annotation_shape",
    table="annotation_shape",
    parent="annotation",
    scope="annotation_id",
    key=("annotation_id", "shape_type"),
    find=Elements("files", distinct="shape"),
    foreign_keys=(fk("annotation_id", "annotation"),),
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
        fk("annotation_shape_id", "annotation_shape"),
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

ANNOTATION_AUTHOR = _authors(
    "annotation", "annotation_authors", order_from_json=False, statuses_default=False, kaggle=True
)

ANNOTATION_METHOD_LINK = Entity(
    name="annotation_method_link",
    table="annotation_method_link",
    parent="annotation",
    scope="annotation_id",
    key=("annotation_id", "link"),
    find=Elements("method_links"),
    foreign_keys=(fk("annotation_id", "annotation"),),
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
