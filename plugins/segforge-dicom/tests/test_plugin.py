"""The plugin as segforge sees it: listed, its image IO and command group registered through the hooks."""

from __future__ import annotations

import json

import pytest
from segforge_dicom.image_io import DicomParams, DicomSeriesIO

from segforge.io.image_io import directory_image_io_for, image_io_for
from segforge.plugins import get_registries


def test_listed_with_its_image_io_and_commands(run_cli):
    code, out, err = run_cli("plugins", "list", "--json")
    assert code == 0, err
    data = json.loads(out)
    listed = {p["name"]: p for p in (data["plugins"] if isinstance(data, dict) else data)}
    assert listed["dicom"]["dist"] == "segforge-dicom" and listed["dicom"]["status"] == "ok"
    io = get_registries().image_io.get("dicom")
    assert isinstance(io, DicomSeriesIO) and io.file_endings == ()
    assert image_io_for(".nii.gz").name == "simpleitk"  # claiming no ending, it never takes a file's place
    code, out, _ = run_cli("dicom", "--help")
    assert code == 0 and all(name in out for name in ("series", "to-nifti", "to-seg", "predict"))


def test_core_asks_the_plugin_about_folders(ct_series, tmp_path):
    assert isinstance(directory_image_io_for(ct_series), DicomSeriesIO)
    assert directory_image_io_for(tmp_path) is None  # an empty folder is nobody's image


def test_params_reject_unknown_settings():
    assert DicomParams(series="CT Body 3.0").series == "CT Body 3.0"
    with pytest.raises(ValueError, match="extra"):
        DicomParams(serie="x")


def test_series_command_lists_uid_description_and_status(ct_series, run_cli):
    code, out, err = run_cli("dicom", "series", ct_series)
    assert code == 0, err
    assert "CT Body 3.0" in out and "512 x 512 x 20" in out and "ok" in out
