"""Generated CryoET portal trees, for benchmarks and scale tests.

One deposition and one dataset with any number of runs; each run has a tilt series, an
alignment, two voxel spacings holding a tomogram each, and five annotations (two files each)
spread over them — the shapes and key names of the real test files, at scale. ``change`` gives
new values to that fraction of the runs (tomogram sizes, annotation counts), as a new day of
portal data would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sluice.store import S3Options, Store, locate

DATES = {
    "deposition_date": "2024-01-02",
    "release_date": "2024-02-03",
    "last_modified_date": "2024-03-04",
}


@dataclass(frozen=True)
class GeneratedTree:
    dataset: int
    runs: int
    objects: int
    changed_runs: int


def generate_tree(
    out: str,
    *,
    runs: int,
    dataset: int = 90001,
    deposition: int = 9000,
    change: float = 0.0,
    generation: int = 0,
    s3: S3Options | None = None,
) -> GeneratedTree:
    """Write the tree into `out` (a folder or bucket URL); return what was written. A later
    generation rewrites only the objects it changes, as a new day of portal data would: the
    others keep their bytes and their version."""
    store, prefix = locate(out, s3, create=True)
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    writer = _Writer(store, base)
    writer.writing = generation == 0
    writer.json(
        f"depositions_metadata/{deposition}/deposition_metadata.json",
        {
            "deposition_identifier": deposition,
            "deposition_title": "Generated deposition",
            "deposition_description": "A deposition generated for scale tests.",
            "dates": DATES,
            "authors": [{"name": "Ada Lovelace", "primary_author_status": True}],
            "deposition_types": ["dataset", "tomogram", "annotation"],
        },
    )
    folder = f"{dataset}/"
    writer.json(
        folder + "dataset_metadata.json",
        {
            "dataset_identifier": dataset,
            "dataset_title": "Generated dataset",
            "dataset_description": "Runs generated for scale tests.",
            "dates": DATES,
            "deposition_id": deposition,
            "sample_type": "organism",
            "authors": [{"name": "Grace Hopper", "corresponding_author_status": True}],
            "funding": [{"funding_agency_name": "Scale Agency", "grant_id": "1"}],
        },
    )
    changed = 0
    for number in range(runs):
        bumped = generation if _changes(number, change) else 0
        changed += bool(bumped)
        writer.writing = generation == 0 or bool(bumped)
        _run(writer, folder, f"RUN{number:04d}", deposition, bumped)
    return GeneratedTree(dataset=dataset, runs=runs, objects=writer.count, changed_runs=changed)


def _changes(number: int, fraction: float) -> bool:
    """Whether run `number` gets new values: the first `fraction` of every hundred runs."""
    return (number * 37) % 100 < round(fraction * 100)


def _run(writer: _Writer, dataset: str, name: str, deposition: int, bump: int) -> None:
    run = f"{dataset}{name}/"
    writer.json(run + "run_metadata.json", {"run_name": name, "deposition_id": deposition})
    writer.json(
        run + "TiltSeries/100/tiltseries_metadata.json",
        {
            "deposition_id": deposition,
            "run_name": name,
            "acceleration_voltage": 300000,
            "spherical_aberration_constant": 2.7,
            "microscope": {"manufacturer": "TFS", "model": "Krios"},
            "microscope_optical_setup": {"energy_filter": "GIF"},
            "camera": {"manufacturer": "Gatan", "model": "K3"},
            "tilt_range": {"min": -60, "max": 60},
            "tilt_step": 3,
            "tilting_scheme": "dose symmetric",
            "tilt_axis": 84.0,
            "total_flux": 120,
            "data_acquisition_software": "SerialEM",
            "tilt_series_quality": 4,
            "pixel_spacing": 2.5,
            "is_aligned": False,
            "mrc_file": f"{run}TiltSeries/100/{name}.mrc",
            "per_section_parameter": [
                {"z_index": z, "frame_acquisition_order": z, "raw_angle": -60 + 3 * z}
                for z in range(3)
            ],
        },
    )
    writer.bytes(f"{run}TiltSeries/100/{name}.mrc", b"\0" * 64)
    writer.json(
        run + "Alignments/100/alignment_metadata.json",
        {
            "deposition_id": deposition,
            "alignment_type": "GLOBAL",
            "method_type": "patch_tracking",
            "tiltseries_path": f"{run}TiltSeries/100/{name}.mrc",
            "volume_dimension": {"x": 1000, "y": 1000, "z": 500},
            "per_section_alignment_parameters": [
                {"z_index": z, "tilt_angle": 1.0} for z in range(3)
            ],
        },
    )
    for spacing in ("10.000", "20.000"):
        vs = f"{run}Reconstructions/VoxelSpacing{spacing}/"
        writer.json(
            vs + "Tomograms/100/tomogram_metadata.json",
            {
                "deposition_id": deposition,
                "run_name": name,
                "voxel_spacing": float(spacing),
                "size": {"x": 500 + bump, "y": 500, "z": 200},
                "offset": {"x": 0, "y": 0, "z": 0},
                "fiducial_alignment_status": "FIDUCIAL",
                "reconstruction_method": "WBP",
                "reconstruction_software": "IMOD",
                "processing": "raw",
                "scales": [
                    {"x": 500, "y": 500, "z": 200},
                    {"x": 250, "y": 250, "z": 100},
                    {"x": 125, "y": 125, "z": 50},
                ],
                "mrc_file": vs + f"Tomograms/100/{name}.mrc",
                "omezarr_dir": vs + f"Tomograms/100/{name}.zarr",
                "dates": DATES,
                "authors": [{"name": "Tomo Author", "primary_author_status": True}],
                "alignment_metadata_path": f"{run}Alignments/100/alignment_metadata.json",
            },
        )
    for index in range(5):
        spacing = ("10.000", "20.000")[index % 2]
        folder = f"{run}Reconstructions/VoxelSpacing{spacing}/Annotations/{100 + index}/"
        writer.json(
            folder + f"object{index}-1.0.json", _annotation(folder, index, deposition, run, bump)
        )


def _annotation(folder: str, index: int, deposition: int, run: str, bump: int) -> Any:
    return {
        "annotation_ingest_id": f"{100 + index}-object{index}-1.0",
        "deposition_id": deposition,
        "annotation_object": {"id": f"GO:{index:07d}", "name": f"object{index}"},
        "annotation_method": "template matching",
        "method_type": "automated",
        "object_count": 10 + index + bump,
        "dates": DATES,
        "alignment_metadata_path": f"{run}Alignments/100/alignment_metadata.json",
        "authors": [{"name": "Annotation Author", "primary_author_status": True}],
        "method_links": [{"link": "https://example.org/method", "link_type": "website"}],
        "files": [
            {"format": "ndjson", "shape": "Point", "path": folder + "points.ndjson"},
            {"format": "mrc", "shape": "SegmentationMask", "path": folder + "mask.mrc"},
        ],
    }


class _Writer:
    def __init__(self, store: Store, base: str) -> None:
        self.store = store
        self.base = base
        self.count = 0
        #: Whether objects are written (else only counted: they stay as they are).
        self.writing = True

    def json(self, key: str, document: Any) -> None:
        self.bytes(key, json.dumps(document, indent=1).encode())

    def bytes(self, key: str, data: bytes) -> None:
        if self.writing:
            self.store.put(self.base + key, data)
        self.count += 1
