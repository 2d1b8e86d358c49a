"""Stale and wrong rows planted before a CryoET import, with the fixed ids the contract tests
check afterwards (the original test suite's pre-populated rows, reference/notes/seeds-cryoet.md
§6 and docs/cryoet-reference.md §6.3)."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from sluice.recipes.cryoet.tree import SCHEMA, TREE
from sluice.sync.repository import SyncRepository

TODAY = date.today()
OLD = {
    "deposition_date": date(2022, 4, 2),
    "release_date": date(2022, 6, 1),
    "last_modified_date": date(2022, 9, 2),
}

DATASET_ID, DATASET_AUTHOR_ID, DATASET_FUNDING_ID = 30001, 301, 302
DEPOSITION_ID1, DEPOSITION_ID2, DEPOSITION_AUTHOR_ID = 300, 301, 201
RUN1_ID, RUN4_ID, STALE_RUN_ID = 401, 402, 902
TILTSERIES_ID, FRAME_ID, STALE_FRAME_ID = 501, 333, 334
VOXEL_12_ID, VOXEL_9_ID = 502, 503
TOMOGRAM_ID, STALE_TOMOGRAM_ID, TOMOGRAM_AUTHOR_ID = 601, 903, 701
ANNOTATION_ID, STALE_ANNOTATION_ID, ANNOTATION_FILE_ID = 602, 904, 701
ANNOTATION_AUTHOR_ID, METHOD_LINK_ID = 702, 802
ALIGNMENT_ID, STALE_ALIGNMENT_ID, STALE_PSAP_ID = 801, 1004, 901


class Seeder:
    """Plants rows with fixed ids; each method mirrors one of the original fixtures."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self.db = db
        SyncRepository(db, TREE).ensure_schema()

    def insert(self, table: str, **values: Any) -> int:
        columns = list(values)
        row = self.db.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
                sql.Identifier(SCHEMA, table),
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                sql.SQL(", ").join(sql.Placeholder() for _ in columns),
            ),
            [values[c] for c in columns],
        ).fetchone()
        assert row is not None
        return int(row[0])

    # -- depositions and datasets ------------------------------------------------------------

    def deposition(self, deposition_id: int = DEPOSITION_ID1) -> None:
        self.insert(
            "deposition",
            id=deposition_id,
            title="Test Deposition",
            description="Test Description",
            deposition_publications="Publications",
            **OLD,
        )

    def deposition_author(self) -> None:
        self.insert(
            "deposition_author",
            id=DEPOSITION_AUTHOR_ID,
            deposition_id=DEPOSITION_ID1,
            name="Author 1",
            author_list_order=1,
            corresponding_author_status=False,
            primary_author_status=False,
        )

    def dataset(self) -> None:
        self.deposition()
        self.insert(
            "dataset",
            id=DATASET_ID,
            deposition_id=DEPOSITION_ID1,
            title="foo",
            description="bar",
            deposition_date=TODAY,
            release_date=TODAY,
            last_modified_date=TODAY,
            organism_name="bacteria x",
            sample_type="cell",
            s3_prefix="s3://invalid_bucket/",
            https_prefix="https://invalid-site.com/1234",
        )

    def dataset_author(self) -> None:
        self.insert(
            "dataset_author",
            id=DATASET_AUTHOR_ID,
            dataset_id=DATASET_ID,
            name="Virginia Woolf",
            author_list_order=3,
        )

    def stale_dataset_author(self) -> None:
        self.insert(
            "dataset_author", dataset_id=DATASET_ID, name="Stale Author", author_list_order=1
        )

    def dataset_funding(self) -> None:
        self.insert(
            "dataset_funding",
            id=DATASET_FUNDING_ID,
            dataset_id=DATASET_ID,
            funding_agency_name="Grant Provider 1",
            grant_id="1234",
        )

    def stale_dataset_funding(self) -> None:
        self.insert(
            "dataset_funding", dataset_id=DATASET_ID, funding_agency_name="Stale Grant Entry"
        )

    # -- runs and what hangs below them ----------------------------------------------------

    def runs(self) -> None:
        self.dataset()
        for run_id, name in ((RUN1_ID, "RUN1"), (RUN4_ID, "RUN4")):
            self.insert(
                "run",
                id=run_id,
                dataset_id=DATASET_ID,
                name=name,
                s3_prefix="s3://test-bucket/RUN1",
                https_prefix="http://test.com/RUN1",
            )

    def stale_run(self) -> None:
        """RUN5, which S3 does not have, with a voxel spacing, a tomogram, an author and an
        annotation below it: all must go with the run."""
        self.insert(
            "run",
            id=STALE_RUN_ID,
            dataset_id=DATASET_ID,
            name="RUN5",
            s3_prefix="s3://test-bucket/RUN5",
            https_prefix="http://test.com/RUN5",
        )
        spacing = self.insert(
            "tomogram_voxel_spacing",
            run_id=STALE_RUN_ID,
            voxel_spacing=10.345,
            s3_prefix="s3://x/VoxelSpacing10.345/",
            https_prefix="http://x/VoxelSpacing10.345/",
        )
        tomogram = self.tomogram_row(spacing, STALE_RUN_ID, size=2)
        self.insert("tomogram_author", tomogram_id=tomogram, name="Jane Smith", author_list_order=1)
        self.annotation_row(None, spacing, STALE_RUN_ID, ingest="100-bar-1.0", count=200)

    def voxel_spacings(self) -> None:
        self.runs()
        prefix = "http://test.com/RUN1/VoxelSpacing{}"
        self.insert(
            "tomogram_voxel_spacing",
            run_id=RUN1_ID,
            voxel_spacing=3.456,
            s3_prefix="s3://test-public-bucket/VoxelSpacing3.456/",
            https_prefix=prefix.format(3.456),
        )
        self.insert(
            "tomogram_voxel_spacing",
            id=VOXEL_12_ID,
            run_id=RUN1_ID,
            voxel_spacing=12.3,
            s3_prefix="s3://test-public-bucket/VoxelSpacing12.3/",
            https_prefix=prefix.format(12.3),
        )
        self.insert(
            "tomogram_voxel_spacing",
            id=VOXEL_9_ID,
            run_id=RUN1_ID,
            voxel_spacing=9.876,
            s3_prefix="s3://test-public-bucket/VoxelSpacing9.876/",
            https_prefix=prefix.format(9.876),
        )

    def stale_voxel_spacing(self) -> None:
        self.insert(
            "tomogram_voxel_spacing",
            run_id=RUN1_ID,
            voxel_spacing=10.345,
            s3_prefix="s3://test-public-bucket/VoxelSpacing10.345/",
            https_prefix="http://test.com/RUN1/VoxelSpacing10.345/",
        )

    def tomogram_row(
        self,
        spacing: int | None,
        run: int | None,
        *,
        size: int,
        row_id: int | None = None,
        **extra: Any,
    ) -> int:
        values: dict[str, Any] = {
            "tomogram_voxel_spacing_id": spacing,
            "run_id": run,
            "deposition_id": DEPOSITION_ID1,
            "name": "RUN1",
            "size_x": size,
            "size_y": size,
            "size_z": size,
            "voxel_spacing": 12.3,
            "fiducial_alignment_status": "FIDUCIAL",
            "reconstruction_method": "SART",
            "reconstruction_software": "",
            "processing": "denoised",
            "tomogram_version": 0.5,
            "offset_x": 0,
            "offset_y": 0,
            "offset_z": 0,
            "s3_omezarr_dir": "s3://stale.zarr",
            "s3_mrc_file": "s3://stale.mrc",
        }
        if row_id is not None:
            values["id"] = row_id
        values.update(extra)
        return self.insert("tomogram", **values)

    def tomograms(self) -> None:
        self.voxel_spacings()
        self.tomogram_row(
            VOXEL_12_ID,
            RUN1_ID,
            size=25,
            row_id=TOMOGRAM_ID,
            reconstruction_method="WBP",
            processing="raw",
            processing_software="tomo3D",
            is_portal_standard=True,
        )

    def stale_tomograms(self) -> None:
        self.tomogram_row(VOXEL_9_ID, RUN1_ID, size=2, row_id=STALE_TOMOGRAM_ID)

    def tomogram_authors(self) -> None:
        self.tomograms()
        self.insert(
            "tomogram_author",
            id=TOMOGRAM_AUTHOR_ID,
            tomogram_id=TOMOGRAM_ID,
            name="Jane Smith",
            author_list_order=1,
        )

    def stale_tomogram_authors(self) -> None:
        for tomogram in (STALE_TOMOGRAM_ID, TOMOGRAM_ID):
            self.insert(
                "tomogram_author",
                tomogram_id=tomogram,
                name="Stale Author 2",
                primary_author_status=True,
                author_list_order=3,
            )

    def tiltseries(self) -> None:
        self.runs()
        self.tiltseries_row(RUN1_ID, TILTSERIES_ID)
        self.insert(
            "frame",
            id=FRAME_ID,
            run_id=RUN1_ID,
            deposition_id=DEPOSITION_ID1,
            acquisition_order=0,
            s3_frame_path="s3://test-public-bucket/30001/RUN1/Frames/frame1",
            https_frame_path="https://foo.com/30001/RUN1/Frames/frame1",
        )
        self.insert(
            "per_section_parameters",
            frame_id=FRAME_ID,
            run_id=RUN1_ID,
            tiltseries_id=TILTSERIES_ID,
            z_index=0,
            raw_angle=0.5,
            astigmatic_angle=0.5,
            major_defocus=0.5,
            minor_defocus=0.5,
            max_resolution=0.5,
            phase_shift=0.5,
        )

    def tiltseries_row(self, run: int, row_id: int | None = None) -> int:
        values: dict[str, Any] = {
            "run_id": run,
            "s3_mrc_file": "ts_foo.mrc",
            "https_mrc_file": "ts_foo.mrc",
            "s3_omezarr_dir": "ts_foo.zarr",
            "https_omezarr_dir": "ts_foo.zarr",
            "acceleration_voltage": 100,
            "spherical_aberration_constant": 1.0,
            "microscope_manufacturer": "FEI",
            "microscope_model": "unknown",
            "microscope_energy_filter": "unknown",
            "camera_manufacturer": "unknown",
            "camera_model": "unknown",
            "tilt_min": 0,
            "tilt_max": 0,
            "tilt_range": 0,
            "tilt_step": 0,
            "tilt_axis": 1.0,
            "tilt_series_quality": 3,
            "total_flux": 0,
            "is_aligned": False,
            "pixel_spacing": 0.3,
            "tilting_scheme": "unknown",
            "data_acquisition_software": "unknown",
        }
        if row_id is not None:
            values["id"] = row_id
        return self.insert("tiltseries", **values)

    def stale_tiltseries(self) -> None:
        self.tiltseries_row(RUN4_ID)
        self.tiltseries_row(STALE_RUN_ID)

    def stale_per_section_parameters(self) -> None:
        self.insert(
            "frame",
            id=STALE_FRAME_ID,
            run_id=RUN1_ID,
            deposition_id=DEPOSITION_ID1,
            acquisition_order=1,
        )
        self.insert(
            "per_section_parameters",
            frame_id=STALE_FRAME_ID,
            run_id=RUN1_ID,
            tiltseries_id=TILTSERIES_ID,
            z_index=10,
            raw_angle=0.5,
        )

    def alignments(self) -> None:
        self.tiltseries()
        self.insert(
            "alignment",
            id=ALIGNMENT_ID,
            run_id=RUN1_ID,
            deposition_id=DEPOSITION_ID1,
            tiltseries_id=TILTSERIES_ID,
            alignment_type="GLOBAL",
            volume_x_dimension=6300,
            volume_y_dimension=6300,
            volume_z_dimension=2000,
            affine_transformation_matrix="[[1, 0, 0, 0], [0, 1, 0, 0]]",
            s3_alignment_metadata="alignment_metadata.json",
            is_portal_standard=True,
        )
        self.insert(
            "per_section_alignment_parameters",
            alignment_id=ALIGNMENT_ID,
            z_index=0,
            in_plane_rotation="[0.5,0.4,-0.7,0.4]",
            x_offset=-9.345,
            y_offset=4.789,
            volume_x_rotation=1,
        )

    def stale_alignments(self) -> None:
        self.deposition(DEPOSITION_ID2)
        self.insert(
            "alignment",
            id=STALE_ALIGNMENT_ID,
            run_id=RUN1_ID,
            deposition_id=DEPOSITION_ID2,
            tiltseries_id=TILTSERIES_ID,
            s3_alignment_metadata="foo",
        )
        self.insert(
            "per_section_alignment_parameters",
            id=STALE_PSAP_ID,
            alignment_id=STALE_ALIGNMENT_ID,
            z_index=7,
        )

    def annotation_row(
        self, row_id: int | None, spacing: int | None, run: int | None, *, ingest: str, count: int
    ) -> int:
        values: dict[str, Any] = {
            "run_id": run,
            "tomogram_voxel_spacing_id": spacing,
            "deposition_id": DEPOSITION_ID1,
            "annotation_ingest_id": ingest,
            "s3_metadata_path": "foo",
            "https_metadata_path": "foo",
            "annotation_method": "2D CNN predictions",
            "method_type": "manual",
            "ground_truth_status": False,
            "object_name": "bar",
            "object_id": "invalid-id",
            "object_count": count,
            "annotation_software": "bar",
            "deposition_date": date(2025, 4, 1),
            "release_date": date(2025, 6, 1),
            "last_modified_date": date(2025, 6, 1),
        }
        if row_id is not None:
            values["id"] = row_id
        return self.insert("annotation", **values)

    def annotations(self) -> None:
        self.deposition(DEPOSITION_ID2)
        self.voxel_spacings()
        # planted without a voxel spacing, as the original fixture did: the import finds it by
        # its natural key and moves it under its voxel spacing
        self.annotation_row(ANNOTATION_ID, None, RUN1_ID, ingest="100-foo-1.0", count=0)
        self.db.execute(
            "UPDATE cryoet.annotation SET deposition_id = %s, object_name = 'foo' WHERE id = %s",
            [DEPOSITION_ID2, ANNOTATION_ID],
        )

    def stale_annotations(self) -> None:
        self.annotation_row(
            STALE_ANNOTATION_ID, VOXEL_12_ID, RUN1_ID, ingest="100-bar-1.0", count=200
        )

    def annotation_files(self) -> None:
        self.annotations()
        shape = self.insert("annotation_shape", annotation_id=ANNOTATION_ID, shape_type="Point")
        self.insert(
            "annotation_file",
            id=ANNOTATION_FILE_ID,
            annotation_shape_id=shape,
            tomogram_voxel_spacing_id=VOXEL_12_ID,
            format="ndjson",
            s3_path="s3://foo",
            https_path="https://foo",
        )
        self.insert(
            "annotation_file",
            annotation_shape_id=shape,
            tomogram_voxel_spacing_id=VOXEL_12_ID,
            format="mrc",
            s3_path="s3://foo",
            https_path="https://foo",
        )

    def stale_annotation_files(self) -> None:
        self.stale_annotations()
        for shape_type, file_format in (("Point", "ndjson"), ("SegmentationMask", "mrc")):
            shape = self.insert(
                "annotation_shape", annotation_id=STALE_ANNOTATION_ID, shape_type=shape_type
            )
            self.insert(
                "annotation_file",
                annotation_shape_id=shape,
                format=file_format,
                s3_path="s3://foo-stale",
                https_path="https://foo-stale",
            )

    def annotation_authors(self) -> None:
        self.annotations()
        self.insert(
            "annotation_author",
            id=ANNOTATION_AUTHOR_ID,
            annotation_id=ANNOTATION_ID,
            name="Jane Smith",
            author_list_order=1,
        )
        self.insert(
            "annotation_author",
            annotation_id=ANNOTATION_ID,
            name="Stale Author",
            corresponding_author_status=True,
            author_list_order=3,
        )

    def method_links(self) -> None:
        """Links of the planted annotation (plant it first)."""
        self.insert(
            "annotation_method_link",
            id=METHOD_LINK_ID,
            annotation_id=ANNOTATION_ID,
            link="https://fake-link.com/resources/100-foo-1.0_method.pdf",
            link_type="documentation",
            name="Method Documentation",
        )
        self.insert(
            "annotation_method_link",
            annotation_id=ANNOTATION_ID,
            link="https://another-link.com",
            link_type="website",
            name="Stale Link",
        )

    def frames(self) -> None:
        self.runs()
        self.insert(
            "frame",
            run_id=RUN1_ID,
            deposition_id=DEPOSITION_ID1,
            s3_frame_path="STALE_FRAME",
            https_frame_path="STALE_FRAME",
        )
        self.insert(
            "frame",
            id=FRAME_ID,
            run_id=RUN1_ID,
            deposition_id=DEPOSITION_ID1,
            acquisition_order=0,
            s3_frame_path="s3://test-public-bucket/30001/RUN1/Frames/frame1",
            https_frame_path="https://foo.com/30001/RUN1/Frames/frame1",
        )

    def frame_acquisition_files(self) -> None:
        self.runs()
        self.insert(
            "frame_acquisition_file",
            run_id=RUN1_ID,
            s3_mdoc_path="STALE_S3_PATH",
            https_mdoc_path="STALE_HTTP_PATH",
        )
        self.insert(
            "frame_acquisition_file",
            id=FRAME_ID,
            run_id=RUN1_ID,
            s3_mdoc_path="s3://test-public-bucket/30001/RUN1/Frames/foo.mdoc",
            https_mdoc_path="https://foo.com/",
        )

    def gains(self) -> None:
        self.runs()
        self.insert(
            "gain_file", run_id=RUN1_ID, s3_file_path="STALE_FRAME", https_file_path="STALE_GAIN"
        )
        self.insert(
            "gain_file",
            id=FRAME_ID,
            run_id=RUN1_ID,
            s3_file_path="s3://test-public-bucket/30001/RUN1/Gains/run1_gain.mrc",
            https_file_path="meep",
        )
