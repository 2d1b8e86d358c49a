"""The CryoET importer's contract, on the portal's test files served by the S3 server process:
stale and wrong rows are planted, dataset 30001 is imported (with depositions 300 and 301), and
the tests check created rows, rows updated in place under the same primary key, stale rows
deleted with their children, unmapped columns left NULL, and entities whose flag is off left
untouched. Expected values: docs/cryoet-reference.md §6."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from sluice.api import Engine
from sluice.errors import ConfigError
from sluice.recipes.cryoet.api import load
from sluice.sync import SyncReport
from tests.fixtures.fix_s3 import s3_client
from tests.integration.cryoet_seed import (
    ALIGNMENT_ID,
    ANNOTATION_AUTHOR_ID,
    ANNOTATION_FILE_ID,
    ANNOTATION_ID,
    DATASET_AUTHOR_ID,
    DATASET_FUNDING_ID,
    DEPOSITION_AUTHOR_ID,
    FRAME_ID,
    METHOD_LINK_ID,
    RUN1_ID,
    RUN4_ID,
    STALE_ALIGNMENT_ID,
    STALE_ANNOTATION_ID,
    STALE_PSAP_ID,
    STALE_RUN_ID,
    STALE_TOMOGRAM_ID,
    TILTSERIES_ID,
    TOMOGRAM_AUTHOR_ID,
    TOMOGRAM_ID,
    VOXEL_9_ID,
    VOXEL_12_ID,
    Seeder,
)

BUCKET = "test-public-bucket"
FILES = Path(__file__).resolve().parents[1] / "data" / "cryoet-test-files"
S3 = f"s3://{BUCKET}/30001"
HTTPS = "https://foo.com/30001"

EXPECTED_DATASET = {
    "deposition_id": 300,
    "title": "Lorem ipsum dolor",
    "description": (
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
        "incididunt ut labore et dolore magna aliqua."
    ),
    "deposition_date": date(2023, 4, 1),
    "release_date": date(2023, 6, 2),
    "last_modified_date": date(2023, 8, 5),
    "s3_prefix": f"{S3}/",
    "https_prefix": f"{HTTPS}/",
    "related_database_entries": "TEST-1243435",
    "dataset_publications": "test-publication-data",
    "sample_preparation": "method1: value1, method2: value3",
    "grid_preparation": "method3: value8, method6: value4",
    "sample_type": "organism",
    "assay_label": "microscopy assay",
    "assay_ontology_id": "EFO:0001234",
    "development_stage_name": "adult stage",
    "development_stage_ontology_id": "HsapDv:0005678",
    "disease_name": "test-disease",
    "disease_ontology_id": "MONDO:0001234",
    "cell_component_id": "GO:123435",
    "cell_component_name": "tail",
    "cell_strain_id": "999999",
    "cell_strain_name": "test value",
    "cell_type_id": "4321",
    "cell_name": "foo",
    "organism_taxid": 1111,
    "organism_name": "Foo Bar",
    "tissue_id": "1234",
    "tissue_name": "test-tissue1",
    "other_setup": "Other Setup",
    "key_photo_url": f"{HTTPS}/KeyPhoto/snapshot.png",
    "key_photo_thumbnail_url": f"{HTTPS}/KeyPhoto/thumbnail.png",
    "file_size": 1375590.0,
}


def reference_files() -> Path:
    if not FILES.is_dir():
        pytest.fail(f"the CryoET test files are missing: {FILES}")
    return FILES


@pytest.fixture(scope="session")
def portal_bucket(s3_endpoint: str) -> str:
    """The test files in a bucket of the S3 server process, uploaded once per session."""
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    root = reference_files()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, path.relative_to(root).as_posix())
    return BUCKET


Importer = Callable[..., SyncReport]


@pytest.fixture
def portal(engine: Engine, s3_endpoint: str, portal_bucket: str) -> Importer:
    def run(*flags: str, deposition_ids: tuple[int, ...] = (), **options: Any) -> SyncReport:
        report = load(
            engine,
            options.pop("bucket", portal_bucket),
            "https://foo.com",
            endpoint_url=s3_endpoint,
            s3_prefix=options.pop("s3_prefix", "30001"),
            deposition_ids=deposition_ids,
            flags=flags,
            **options,
        )
        return report

    return run


@pytest.fixture
def seed(db: psycopg.Connection) -> Seeder:
    return Seeder(db)


@pytest.fixture
def rows(database_url: str) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:

        def query(
            table: str, where: str = "TRUE", *params: Any, order: str = "id"
        ) -> list[dict[str, Any]]:
            return conn.execute(
                f"SELECT * FROM cryoet.{table} WHERE {where} ORDER BY {order}", params
            ).fetchall()

        yield query


def check(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every expected value, and NULL in every other column except ids and references."""
    for column, value in expected.items():
        assert actual[column] == value, f"{column}: {actual[column]!r} != {value!r}"
    others = {
        k: v
        for k, v in actual.items()
        if k not in expected and k != "id" and not k.endswith("_id") and v is not None
    }
    assert others == {}, f"columns the import should leave NULL: {others}"


def ok(report: SyncReport) -> SyncReport:
    failed = [(s.name, s.error) for s in report.scopes if not s.ok]
    assert not failed, failed
    return report


# -- datasets and depositions -----------------------------------------------------------------


def test_a_new_dataset_imports_its_deposition(portal: Importer, rows: Any) -> None:
    report = ok(portal())

    [dataset] = rows("dataset")
    check(dataset, {"id": 30001, **EXPECTED_DATASET})
    # the dataset's deposition, and 301 which its annotation names, were not there: imported
    assert [(d["id"], d["title"]) for d in rows("deposition")] == [
        (300, "ipsum dolor sit amet"),
        (301, "Deposition 2"),
    ]
    authors = rows("deposition_author", "deposition_id = 300", order="author_list_order")
    assert [a["name"] for a in authors] == ["Author 1", "Author 2"]
    assert rows("dataset_author") == [] and rows("dataset_funding") == []
    assert report.totals()["dataset"].created == 1


def test_an_existing_dataset_is_updated_and_unflagged_children_are_untouched(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.dataset()
    seed.dataset_author()
    seed.dataset_funding()

    ok(portal())

    [dataset] = rows("dataset")
    check(dataset, {"id": 30001, **EXPECTED_DATASET})
    assert [(a["id"], a["name"], a["author_list_order"]) for a in rows("dataset_author")] == [
        (DATASET_AUTHOR_ID, "Virginia Woolf", 3)
    ]
    assert [f["id"] for f in rows("dataset_funding")] == [DATASET_FUNDING_ID]
    # a deposition already in the database is not overwritten by a dataset import
    [deposition] = rows("deposition", "id = 300")
    assert (deposition["title"], deposition["description"]) == (
        "Test Deposition",
        "Test Description",
    )


def test_dataset_authors_and_funding_replace_stale_rows(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.dataset()
    seed.dataset_author()
    seed.dataset_funding()
    seed.stale_dataset_author()
    seed.stale_dataset_funding()

    report = ok(portal("dataset_authors", "dataset_funding"))

    authors = rows("dataset_author", order="author_list_order")
    assert [a["name"] for a in authors] == ["Jane Eyre", "Virginia Woolf", "Julia Child"]
    check(
        authors[0],
        {
            "name": "Jane Eyre",
            "author_list_order": 1,
            "corresponding_author_status": False,
            "primary_author_status": True,
        },
    )
    check(
        authors[1],
        {
            "id": DATASET_AUTHOR_ID,
            "name": "Virginia Woolf",
            "author_list_order": 2,
            "orcid": "0000-0000-1234-0000",
            "corresponding_author_status": False,
            "primary_author_status": False,
            "email": "vwoolf@dall.way",
            "affiliation_name": "Bloomsbury",
            "affiliation_address": "London, UK",
            "affiliation_identifier": "1234343",
        },
    )
    check(
        authors[2],
        {
            "name": "Julia Child",
            "author_list_order": 3,
            "orcid": "9876-0000-0000-0000",
            "corresponding_author_status": True,
            "primary_author_status": False,
        },
    )
    funding = rows("dataset_funding", order="funding_agency_name, grant_id")
    assert [(f["funding_agency_name"], f["grant_id"]) for f in funding] == [
        ("Grant Provider 1", "1234"),
        ("Grant Provider 1", "5678"),
        ("Test Agency 1", "56789"),
        ("Test Agency 2", None),
    ]
    assert funding[0]["id"] == DATASET_FUNDING_ID
    counts = report.totals()
    assert (
        counts["dataset_author"].created,
        counts["dataset_author"].updated,
        counts["dataset_author"].deleted,
    ) == (2, 1, 1)
    assert (
        counts["dataset_funding"].created,
        counts["dataset_funding"].deleted,
        counts["dataset_funding"].unchanged,
    ) == (3, 1, 1)


def test_explicit_depositions_are_updated_with_their_authors_and_types(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.deposition()
    seed.deposition_author()

    ok(portal("depositions", deposition_ids=(300, 301)))

    deposition = rows("deposition", "id = 300")[0]
    check(
        deposition,
        {
            "id": 300,
            "title": "ipsum dolor sit amet",
            "description": (
                "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
                "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis "
                "nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat."
            ),
            "deposition_date": date(2023, 5, 2),
            "release_date": date(2023, 6, 1),
            "last_modified_date": date(2023, 4, 2),
            "key_photo_url": "https://foo.com/deposition_metadata/300/Images/snapshot.png",
            "key_photo_thumbnail_url": "https://foo.com/deposition_metadata/300/Images/thumbnail.png",
        },
    )
    authors = rows("deposition_author", "deposition_id = 300", order="author_list_order")
    check(
        authors[0],
        {
            "id": DEPOSITION_AUTHOR_ID,
            "name": "Author 1",
            "orcid": "0000-0000-0000-0001",
            "primary_author_status": True,
            "author_list_order": 1,
        },
    )
    check(
        authors[1],
        {
            "name": "Author 2",
            "orcid": "0000-0000-0000-0002",
            "corresponding_author_status": True,
            "author_list_order": 2,
        },
    )
    assert [t["type"] for t in rows("deposition_type", "deposition_id = 300", order="type")] == [
        "annotation",
        "dataset",
    ]
    second = rows("deposition", "id = 301")[0]
    check(
        second,
        {
            "id": 301,
            "title": "Deposition 2",
            "description": "A really awesome deposition",
            "deposition_date": date(2023, 4, 2),
            "release_date": date(2024, 6, 1),
            "last_modified_date": date(2023, 9, 2),
            "related_database_entries": "EMPIAR-1000, EMDB-1001",
            "deposition_publications": "doi:10.1000/1234",
        },
    )
    names = [
        a["name"]
        for a in rows("deposition_author", "deposition_id = 301", order="author_list_order")
    ]
    assert names == ["Author 3", "Author 4", "Author 2"]


# -- runs ---------------------------------------------------------------------------------------


def test_runs_are_updated_in_place_and_a_stale_run_goes_with_its_children(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.runs()
    seed.stale_run()
    seed.stale_tiltseries()

    report = ok(portal("runs"))

    runs = rows("run", order="name")
    assert [(r["name"], r["s3_prefix"], r["https_prefix"]) for r in runs] == [
        (name, f"{S3}/{name}/", f"{HTTPS}/{name}/") for name in ("RUN1", "RUN2", "RUN3", "RUN4")
    ]
    assert (runs[0]["id"], runs[3]["id"]) == (RUN1_ID, RUN4_ID)
    assert rows("run", "id = %s", STALE_RUN_ID) == []
    # the stale run's voxel spacing, tomogram, author and annotation went with it
    assert rows("tomogram_voxel_spacing", "run_id = %s", STALE_RUN_ID) == []
    assert rows("tomogram", "run_id = %s", STALE_RUN_ID) == []
    assert rows("annotation", "run_id = %s", STALE_RUN_ID) == []
    assert rows("tomogram_author") == []
    # tiltseries are not flagged: the stale one of a surviving run stays
    assert [t["run_id"] for t in rows("tiltseries")] == [RUN4_ID]
    counts = report.totals()["run"]
    assert (counts.created, counts.updated, counts.deleted) == (2, 2, 1)


# -- tiltseries, frames, gains --------------------------------------------------------------------


def test_tiltseries_and_per_section_parameters(portal: Importer, seed: Seeder, rows: Any) -> None:
    seed.tiltseries()
    seed.stale_run()
    seed.stale_tiltseries()
    seed.stale_per_section_parameters()

    ok(portal("tiltseries"))

    series = {r["run_id"]: r for r in rows("tiltseries")}
    run3 = rows("run", "name = 'RUN3'")[0]["id"]
    assert sorted(series) == sorted([RUN1_ID, run3])  # RUN4's and RUN5's stale ones are gone
    ts = f"{S3}/RUN1/TiltSeries/100"
    check(
        series[RUN1_ID],
        {
            "id": TILTSERIES_ID,
            "deposition_id": 300,
            "acceleration_voltage": 300000,
            "spherical_aberration_constant": 2.7,
            "microscope_manufacturer": "TFS",
            "microscope_model": "Krios",
            "microscope_additional_info": "info about the scope",
            "microscope_energy_filter": "GIF Quantum LS",
            "microscope_phase_plate": "Volta Phase Plate",
            "microscope_image_corrector": "Foo",
            "camera_manufacturer": "Gatan",
            "camera_model": "K2 Summit",
            "tilt_min": -40.01,
            "tilt_max": 40.97,
            "tilt_range": 80.98,
            "tilt_step": 2.0,
            "tilt_axis": 84.7,
            "tilting_scheme": "Dose symmetric from 0.0 degrees",
            "total_flux": 122.0,
            "data_acquisition_software": "SerialEM",
            "binning_from_frames": 1.0,
            "aligned_tiltseries_binning": 3,
            "tilt_series_quality": 5,
            "related_empiar_entry": "EMPIAR-XYZ",
            "pixel_spacing": 4.37,
            "is_aligned": True,
            "s3_mrc_file": f"{ts}/ts_foo.mrc",
            "https_mrc_file": f"{HTTPS}/RUN1/TiltSeries/100/ts_foo.mrc",
            "s3_omezarr_dir": f"{ts}/ts_foo.zarr",
            "https_omezarr_dir": f"{HTTPS}/RUN1/TiltSeries/100/ts_foo.zarr",
            "s3_angle_list": f"{ts}/bar.rawtlt",
            "https_angle_list": f"{HTTPS}/RUN1/TiltSeries/100/bar.rawtlt",
            "file_size_mrc": 0.0,
            "file_size_omezarr": 0.0,
            "size_x": 3708,
            "size_y": 3838,
            "size_z": 31,
        },
    )
    assert (series[run3]["tilt_min"], series[run3]["tilt_max"], series[run3]["tilt_range"]) == (
        -33.0,
        33.0,
        66.0,
    )
    assert series[run3]["s3_angle_list"] == f"{S3}/RUN3/TiltSeries/100/bar.tlt"
    [psp] = rows("per_section_parameters")
    check(
        psp,
        {
            "frame_id": FRAME_ID,
            "run_id": RUN1_ID,
            "tiltseries_id": TILTSERIES_ID,
            "z_index": 0,
            "raw_angle": -52.01,
            "astigmatic_angle": 37.98,
            "major_defocus": 28.0,
            "minor_defocus": 37.98,
            "max_resolution": 88.0,
            "phase_shift": 2699.0,
        },
    )
    # frames are not flagged: the frame of the stale parameters stays
    assert sorted(f["acquisition_order"] for f in rows("frame")) == [0, 1]


def test_frames_are_replaced_with_sizes_from_the_listing(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.frames()

    ok(portal("frames"))

    frames = rows("frame", "run_id = %s", RUN1_ID, order="acquisition_order")
    assert frames[0]["id"] == FRAME_ID
    expected = [
        (0, 0.0, 1.92, f"{S3}/RUN1/Frames/frame1", f"{HTTPS}/RUN1/Frames/frame1", 11.0),
        (1, 1.92, 2.0, f"{S3}/RUN1/Frames/frame2", f"{HTTPS}/RUN1/Frames/frame2", 0.0),
        (2, 3.92, 1.5, None, None, None),
    ]
    for frame, (order, accumulated, exposure, s3, https, size) in zip(
        frames, expected, strict=True
    ):
        check(
            frame,
            {
                "run_id": RUN1_ID,
                "deposition_id": 300,
                "acquisition_order": order,
                "accumulated_dose": accumulated,
                "exposure_dose": exposure,
                "is_gain_corrected": True,
                "s3_frame_path": s3,
                "https_frame_path": https,
                "file_size": size,
            },
        )
    [mdoc] = rows("frame_acquisition_file")  # implied by --import-frames
    assert mdoc["s3_mdoc_path"] == f"{S3}/RUN1/Frames/foo.mdoc"


def test_frame_acquisition_files_and_gains_keep_their_ids(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.frame_acquisition_files()
    seed.db.execute("DELETE FROM cryoet.gain_file")
    seed.insert("gain_file", run_id=RUN1_ID, s3_file_path="STALE_FRAME", https_file_path="x")
    seed.insert(
        "gain_file",
        id=FRAME_ID,
        run_id=RUN1_ID,
        s3_file_path=f"{S3}/RUN1/Gains/run1_gain.mrc",
        https_file_path="meep",
    )

    ok(portal("frame_acquisition_files", "gains"))

    [mdoc] = rows("frame_acquisition_file", "run_id = %s", RUN1_ID)
    check(
        mdoc,
        {
            "id": FRAME_ID,
            "s3_mdoc_path": f"{S3}/RUN1/Frames/foo.mdoc",
            "https_mdoc_path": f"{HTTPS}/RUN1/Frames/foo.mdoc",
        },
    )
    gains = rows("gain_file", "run_id = %s", RUN1_ID, order="s3_file_path")
    assert [(g["id"], g["s3_file_path"], g["https_file_path"]) for g in gains] == [
        (FRAME_ID, f"{S3}/RUN1/Gains/run1_gain.mrc", f"{HTTPS}/RUN1/Gains/run1_gain.mrc"),
        (gains[1]["id"], f"{S3}/RUN1/Gains/run1a_gain.mrc", f"{HTTPS}/RUN1/Gains/run1a_gain.mrc"),
    ]


# -- alignments ---------------------------------------------------------------------------------


def test_alignments_and_their_parameters(portal: Importer, seed: Seeder, rows: Any) -> None:
    seed.alignments()
    seed.stale_run()
    seed.stale_alignments()

    ok(portal("alignments"))

    [alignment] = rows("alignment")
    check(
        alignment,
        {
            "id": ALIGNMENT_ID,
            "run_id": RUN1_ID,
            "tiltseries_id": TILTSERIES_ID,
            "deposition_id": 300,
            "alignment_method": "patch_tracking",
            "alignment_type": "GLOBAL",
            "volume_x_dimension": 900.0,
            "volume_y_dimension": 908.0,
            "volume_z_dimension": 500.0,
            "volume_x_offset": 0.0,
            "volume_y_offset": 0.0,
            "volume_z_offset": 0.0,
            "tilt_offset": 0.0,
            "x_rotation_offset": 0.0,
            "affine_transformation_matrix": "{{1,0,0,0},{0,1,0,0},{0,0,1,0},{0,0,0,1}}",
            "s3_alignment_metadata": f"{S3}/RUN1/Alignments/100/alignment_metadata.json",
            "https_alignment_metadata": f"{HTTPS}/RUN1/Alignments/100/alignment_metadata.json",
            "is_portal_standard": False,
        },
    )
    assert rows("alignment", "id = %s", STALE_ALIGNMENT_ID) == []
    assert rows("per_section_alignment_parameters", "id = %s", STALE_PSAP_ID) == []
    parameters = rows("per_section_alignment_parameters", order="z_index")
    check(
        parameters[0],
        {
            "alignment_id": ALIGNMENT_ID,
            "z_index": 0,
            "in_plane_rotation": "[0.1,0.2,-0.3,0.4]",
            "x_offset": -4.345,
            "y_offset": 5.789,
            "volume_x_rotation": 0.0,
        },
    )
    check(
        parameters[1],
        {
            "alignment_id": ALIGNMENT_ID,
            "z_index": 1,
            "in_plane_rotation": "[0.33,0.44,-0.55,0.66]",
            "x_offset": -3.21,
            "y_offset": 4.321,
            "volume_x_rotation": 0.0,
        },
    )
    assert len(parameters) == 2


# -- voxel spacings and tomograms ---------------------------------------------------------------


def test_voxel_spacings_tomograms_and_authors_remove_stale_rows(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.tomogram_authors()
    seed.stale_voxel_spacing()
    seed.stale_tomograms()
    seed.stale_tomogram_authors()

    ok(portal("tomogram_authors"))

    spacings = {(r["run_id"], r["voxel_spacing"]): r for r in rows("tomogram_voxel_spacing")}
    run2 = rows("run", "name = 'RUN2'")[0]["id"]
    assert sorted(spacings) == sorted([(RUN1_ID, 9.876), (RUN1_ID, 12.3), (run2, 3.456)])
    assert spacings[(RUN1_ID, 9.876)]["id"] == VOXEL_9_ID
    check(
        spacings[(RUN1_ID, 12.3)],
        {
            "id": VOXEL_12_ID,
            "run_id": RUN1_ID,
            "voxel_spacing": 12.3,
            "s3_prefix": f"{S3}/RUN1/Reconstructions/VoxelSpacing12.300/",
            "https_prefix": f"{HTTPS}/RUN1/Reconstructions/VoxelSpacing12.300/",
        },
    )
    assert rows("tomogram", "id = %s", STALE_TOMOGRAM_ID) == []
    tomograms = {t["run_id"]: t for t in rows("tomogram")}
    assert sorted(tomograms) == sorted([RUN1_ID, run2])
    vs12 = "RUN1/Reconstructions/VoxelSpacing12.300"
    check(
        tomograms[RUN1_ID],
        {
            "id": TOMOGRAM_ID,
            "name": "RUN1",
            "size_x": 980,
            "size_y": 1016,
            "size_z": 500,
            "voxel_spacing": 12.3,
            "fiducial_alignment_status": "FIDUCIAL",
            "reconstruction_method": "WBP",
            "reconstruction_software": "AreTomo 1.0",
            "processing": "raw",
            "processing_software": "tomo3D",
            "tomogram_version": 1.0,
            "s3_omezarr_dir": f"{S3}/{vs12}/Tomograms/100/RUN1.zarr",
            "https_omezarr_dir": f"{HTTPS}/{vs12}/Tomograms/100/RUN1.zarr",
            "s3_mrc_file": f"{S3}/{vs12}/Tomograms/100/RUN1.mrc",
            "https_mrc_file": f"{HTTPS}/{vs12}/Tomograms/100/RUN1.mrc",
            "file_size_omezarr": 0.0,
            "file_size_mrc": 0.0,
            "scale0_dimensions": "980,1016,500",
            "scale1_dimensions": "490,508,250",
            "scale2_dimensions": "245,254,125",
            "ctf_corrected": True,
            "offset_x": 10,
            "offset_y": 32,
            "offset_z": 43,
            "key_photo_url": f"{HTTPS}/{vs12}/Images/key-photo-snapshot.png",
            "key_photo_thumbnail_url": f"{HTTPS}/{vs12}/Images/key-photo-thumbnail.png",
            "deposition_id": 300,
            "is_portal_standard": False,
            "is_author_submitted": True,
            "is_visualization_default": True,
            "neuroglancer_config": '{"foo":"bar","baz":"test"}',
            "deposition_date": date(2023, 4, 1),
            "release_date": date(2024, 6, 1),
            "last_modified_date": date(2023, 9, 2),
            "tomogram_voxel_spacing_id": VOXEL_12_ID,
        },
    )
    second = tomograms[run2]
    assert (
        second["reconstruction_software"],
        second["fiducial_alignment_status"],
        second["reconstruction_method"],
        second["processing"],
    ) == ("Unknown", "NON_FIDUCIAL", "SART", "filtered")
    assert second["key_photo_url"] is None and second["neuroglancer_config"] is None
    authors = rows("tomogram_author", "tomogram_id = %s", TOMOGRAM_ID, order="author_list_order")
    check(
        authors[0],
        {
            "name": "John Doe",
            "corresponding_author_status": True,
            "primary_author_status": False,
            "author_list_order": 1,
        },
    )
    check(
        authors[1],
        {
            "id": TOMOGRAM_AUTHOR_ID,
            "name": "Jane Smith",
            "orcid": "0000-4444-1234-0000",
            "corresponding_author_status": False,
            "primary_author_status": False,
            "email": "jsmith@test.com",
            "affiliation_name": "Foo",
            "affiliation_address": "some address",
            "affiliation_identifier": "test-affliation-id",
            "author_list_order": 2,
        },
    )
    assert len(authors) == 2 and rows("tomogram_author", "name = 'Stale Author 2'") == []


# -- annotations --------------------------------------------------------------------------------

ANNOTATIONS = "RUN1/Reconstructions/VoxelSpacing12.300/Annotations"


def test_annotations_with_shapes_and_files_remove_stale_rows(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.annotation_files()
    seed.stale_annotation_files()

    report = ok(portal("annotations"))

    [annotation] = rows("annotation")
    check(
        annotation,
        {
            "id": ANNOTATION_ID,
            "run_id": RUN1_ID,
            "annotation_ingest_id": "100-foo-1.0",
            "s3_metadata_path": f"{S3}/{ANNOTATIONS}/100/foo-1.0.json",
            "https_metadata_path": f"{HTTPS}/{ANNOTATIONS}/100/foo-1.0.json",
            "deposition_date": date(2023, 4, 1),
            "release_date": date(2023, 6, 1),
            "last_modified_date": date(2023, 6, 1),
            "annotation_publication": "EMPIAR-XYZ",
            "annotation_method": "2D CNN predictions",
            "ground_truth_status": True,
            "object_name": "foo",
            "object_id": "GO:000000",
            "annotation_software": "pyTOM + Keras",
            "is_curator_recommended": True,
            "object_count": 16,
            "deposition_id": 301,
            "method_type": "hybrid",
            "tomogram_voxel_spacing_id": VOXEL_12_ID,
        },
    )
    assert rows("annotation", "id = %s", STALE_ANNOTATION_ID) == []
    files = rows(
        "annotation_file f JOIN cryoet.annotation_shape s ON s.id = f.annotation_shape_id",
        "TRUE",
        order="s.shape_type, f.format",
    )
    prefix = f"{ANNOTATIONS}/100-foo-1.0"
    expected = [
        ("AnnotationCaption", "saber", f"{prefix}_point_caption.json", False),
        ("GlobalCaption", "saber", f"{prefix}_globalcaption.json", False),
        ("InstanceSegmentationMask", "mrc", f"{prefix}_instancesegmask.mrc", False),
        ("InstanceSegmentationMask", "zarr", f"{prefix}_instancesegmask.zarr", False),
        ("Point", "ndjson", f"{prefix}_point.ndjson", True),
        ("SegmentationMask", "mrc", f"{prefix}_segmask.mrc", False),
        ("SegmentationMask", "zarr", f"{prefix}_segmask.zarr", False),
    ]
    found = [
        (
            f["shape_type"],
            f["format"],
            f["s3_path"],
            f["https_path"],
            f["is_visualization_default"],
            f["source"],
            f["file_size"],
            f["tomogram_voxel_spacing_id"],
        )
        for f in files
    ]
    assert found == [
        (shape, fmt, f"{S3}/{path}", f"{HTTPS}/{path}", default, "community", 0.0, VOXEL_12_ID)
        for shape, fmt, path, default in expected
    ]
    point = next(f for f in files if f["format"] == "ndjson")
    assert rows("annotation_file", "format = 'ndjson'")[0]["id"] == ANNOTATION_FILE_ID
    assert point["annotation_shape_id"] == rows("annotation_shape", "shape_type = 'Point'")[0]["id"]
    assert len(rows("annotation_shape")) == 5
    assert report.totals()["annotation"].deleted == 1


def test_annotation_authors_and_method_links_replace_stale_rows(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.annotation_authors()  # plants the annotation too
    seed.method_links()

    ok(portal("annotation_authors", "annotation_method_links"))

    authors = rows("annotation_author", order="author_list_order")
    check(
        authors[0],
        {
            "id": ANNOTATION_AUTHOR_ID,
            "name": "Jane Smith",
            "corresponding_author_status": False,
            "primary_author_status": True,
            "author_list_order": 1,
        },
    )
    check(
        authors[1],
        {
            "name": "J Carpenter",
            "corresponding_author_status": False,
            "primary_author_status": True,
            "author_list_order": 2,
        },
    )
    check(
        authors[2],
        {
            "name": "John Doe",
            "corresponding_author_status": False,
            "primary_author_status": False,
            "orcid": "0000-0000-1234-0000",
            "email": "jdoe@test.com",
            "author_list_order": 3,
        },
    )
    assert len(authors) == 3
    links = rows("annotation_method_link", order="link DESC")
    assert [(link["link"], link["link_type"], link["name"]) for link in links] == [
        (
            "https://fake-link.com/resources/100-foo-1.0_method.pdf",
            "documentation",
            "Method Documentation",
        ),
        ("https://another-link.com/100-foo-1.0_code.zip", "source_code", "Source Code"),
    ]
    assert links[0]["id"] == METHOD_LINK_ID


# -- safety and scale --------------------------------------------------------------------------


def test_a_document_that_cannot_be_fetched_deletes_nothing(
    portal: Importer, seed: Seeder, rows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(portal("annotation_authors"))
    before = {
        table: len(rows(table))
        for table in (
            "annotation",
            "annotation_file",
            "annotation_author",
            "tomogram_voxel_spacing",
        )
    }
    assert before["annotation_file"] == 7

    monkeypatch.setenv("SLUICE_FAULT_UNREADABLE", "Annotations/100/foo-1.0.json")
    report = portal("annotation_authors", full=True)  # the bucket did not change: read it all

    assert not report.ok
    [scope] = report.scopes
    assert "foo-1.0.json: cannot be fetched" in (scope.error or "")
    assert "its scope is left unchanged" in (scope.error or "")
    after = {table: len(rows(table)) for table in before}
    assert after == before


def test_a_second_run_over_unchanged_input_writes_nothing(
    portal: Importer, rows: Any, database_url: str
) -> None:
    ok(portal(everything=True, deposition_ids=(300, 301)))
    written = row_versions(database_url)

    again = ok(portal(everything=True, deposition_ids=(300, 301)))
    assert not again.changed and again.requests["gets"] == 0
    assert row_versions(database_url) == written  # nor the ledger's record of what was read

    # read again in full, every row is found in place and none is rewritten
    full = ok(portal(everything=True, deposition_ids=(300, 301), full=True))
    assert not full.changed and full.requests["gets"] > 0
    assert all(c.unchanged > 0 or c == c.__class__() for c in full.totals().values())
    assert row_versions(database_url, "cryoet")["cryoet"] == written["cryoet"]


def row_versions(database_url: str, *schemas: str) -> dict[str, list[Any]]:
    """Every row version of the sync's tables (``cryoet``) and of the ledger's record of what
    syncs read (``sluice.sync_*``): any insert, update or delete changes it (a rewrite of a row
    with the same values too: it gets a new ``ctid`` and ``xmin``)."""
    wanted = schemas or ("cryoet", "sluice")
    out: dict[str, list[Any]] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = 'cryoet' "
            "OR (schemaname = 'sluice' AND tablename LIKE 'sync\\_%') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            if schema not in wanted:
                continue
            query = sql.SQL("SELECT ctid::text, xmin::text FROM {} ORDER BY 1").format(
                sql.Identifier(schema, table)
            )
            out.setdefault(schema, []).append((table, conn.execute(query).fetchall()))
    return out


def test_a_local_folder_gives_the_same_database_as_s3(
    engine: Engine, portal: Importer, tmp_path: Path, rows: Any, database_url: str
) -> None:
    ok(portal(everything=True, deposition_ids=(300, 301)))
    from_s3 = _dump(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA cryoet CASCADE")

    folder = tmp_path / BUCKET
    shutil.copytree(reference_files(), folder)
    ok(
        load(
            engine,
            str(folder),
            "https://foo.com",
            s3_prefix="30001",
            everything=True,
            deposition_ids=(300, 301),
        )
    )

    assert _dump(database_url) == from_s3


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            t
            for (t,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'cryoet' "
                "ORDER BY 1"
            )
        ]
        return {
            table: conn.execute(f"SELECT * FROM cryoet.{table} ORDER BY 1").fetchall()
            for table in tables
        }


def test_dry_run_prints_the_changes_and_changes_nothing(
    portal: Importer, seed: Seeder, rows: Any
) -> None:
    seed.runs()
    seed.stale_run()

    report = ok(portal("runs", dry_run=True))

    assert report.dry_run
    assert report.totals()["run"].deleted == 1
    changes = report.scopes[0].changes
    assert ("run", "delete", f"id {STALE_RUN_ID}") in changes
    assert ("run", "create", "dataset_id=30001, name='RUN2'") in changes
    assert [r["name"] for r in rows("run", order="name")] == ["RUN1", "RUN4", "RUN5"]


def test_prefixes_match_whole_path_segments(portal: Importer, rows: Any) -> None:
    report = ok(portal(s3_prefix="3000"))  # must not select 30001/

    assert report.scopes == []
    assert rows("dataset") == []


# -- the ledger's list of runs ----------------------------------------------------------------


def test_syncs_are_recorded_as_runs_and_a_missing_deposition_fails_its_run(
    engine: Engine, portal: Importer
) -> None:
    report = ok(portal("runs"))
    with pytest.raises(ConfigError, match=r"deposition 999: s3://.*/depositions_metadata/999/"):
        portal("depositions", deposition_ids=(999,))
    portal("runs", dry_run=True)

    failed, synced = engine.status().runs[:2]
    assert len(engine.status().runs) == 2  # the dry run is not recorded
    assert synced.command == f"cryoet load {BUCKET} --s3-prefix 30001"
    assert (synced.status, synced.loaded, synced.errored, synced.error) == ("succeeded", 1, 0, None)
    assert synced.rows["inserted"] == sum(c.created for c in report.totals().values())
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("deposition 999: s3://")
