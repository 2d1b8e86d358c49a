"""Runs and what hangs below a run: frames, gains, tilt series, alignments, identified objects,
voxel spacings."""

from __future__ import annotations

from sluice.recipes.cryoet import values as v
from sluice.recipes.cryoet.columns import (
    ID,
    B,
    F,
    I,
    T,
    fk,
    prefixes,
)
from sluice.sync import Entity, Field
from sluice.sync.finders import Elements, Files, Folders, Subfolders

RUN = Entity(
    name="run",
    table="run",
    parent="dataset",
    scope="dataset_id",
    key=("dataset_id", "name"),
    find=Subfolders("run_metadata.json"),
    flag="runs",
    # Everything below a run comes from its own folder, save the dataset's deposition (frames,
    # is_author_submitted, annotation file sources): a re-sync keeps runs that did not change.
    partition=("dataset.deposition_id",),
    fields=(
        Field("dataset_id", ID, nullable=False),
        Field("name", T, v.j("run_name"), nullable=False),
        *prefixes(),
    ),
)

FRAME_ACQUISITION_FILE = Entity(
    name="frame_acquisition_file",
    table="frame_acquisition_file",
    parent="run",
    scope="run_id",
    key=("run_id", "s3_mdoc_path"),
    find=Files("Frames/frames_metadata.json"),
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
    foreign_keys=(fk("deposition_id", "deposition"),),
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
    foreign_keys=(fk("deposition_id", "deposition"),),
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
    flag="tomogram_voxel_spacing",
    fields=(
        Field("run_id", ID, nullable=False),
        Field("voxel_spacing", F, lambda item: float(item.groups["spacing"]), nullable=False),
        *prefixes(),
    ),
)
