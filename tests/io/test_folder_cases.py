"""Cases given as sub-folders: an image IO that claims folders (``claims_directory``) makes each one a case.

The protocol is core's; DICOM is its first user (plugins/segforge-dicom). Here a plugin
installed through segforge.testing.FakePlugins reads a folder holding ``volume.nii.gz`` as one
image, which proves the core path without any DICOM library; the DICOM-specific core message
(no plugin installed) is checked on copies of real slices.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from segforge.errors import SegforgeError
from segforge.io.folder_cases import folder_cases
from segforge.testing.fake_plugins import FakePlugins
from segforge.testing.synthetic import make_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from inference_helpers import make_plans, write_checkpoint  # noqa: E402

FOLDER_IO = """
from pathlib import Path
from segforge import hookimpl
from segforge.io.image_io import SimpleITKIO


class VolumeFolderIO(SimpleITKIO):
    '''A folder holding volume.nii.gz is one image.'''

    name = "volume_folder"
    file_endings = ()

    def claims_directory(self, path):
        return (Path(path) / "volume.nii.gz").is_file()

    def read_images(self, paths):
        return super().read_images([Path(p) / "volume.nii.gz" for p in paths])


@hookimpl
def segforge_register_image_io(registry):
    registry.add(VolumeFolderIO())
"""
RUN = Path("Task099_Test") / "3d_fullres" / "default__generic_unet__segforgePlans" / "fold_0"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "TotalSegmentator_examples" / "example_ct_dicom"


@pytest.fixture
def folder_plugin(tmp_path, monkeypatch):
    with FakePlugins(tmp_path / "plugins", monkeypatch) as fakes:
        (tmp_path / "plugins").mkdir()
        fakes.install("segforge-volumefolder", FOLDER_IO)
        yield


@pytest.fixture
def case_folders(tmp_path):
    """in/a/volume.nii.gz and in/b/volume.nii.gz: two synthetic cases, each in its own folder."""
    task = make_task(tmp_path / "raw" / "Task099_Test", n_cases=0, n_test=2, shape=(12, 16, 14))
    for i, name in enumerate("ab"):
        (tmp_path / "in" / name).mkdir(parents=True)
        shutil.copy(task / "imagesTs" / f"case_{i:03d}_0000.nii.gz", tmp_path / "in" / name / "volume.nii.gz")
    return tmp_path / "in"


def test_each_claimed_subfolder_is_a_case_written_as_nifti(folder_plugin, case_folders, tmp_path, run_main):
    write_checkpoint(tmp_path / "results" / RUN, make_plans((2.0, 1.0, 1.5)))
    model = str(tmp_path / "results" / RUN)
    args = ["predict", "-i", str(case_folders), "-o", str(tmp_path / "out"), "-m", model, "--no-tta", "--sequential"]
    code, out, err = run_main([*args, "--device", "cpu"])
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.nii.gz", "b.nii.gz"]
    for name in "ab":
        pred, image = (sitk.ReadImage(str(p)) for p in (tmp_path / "out" / f"{name}.nii.gz",
                                                         case_folders / name / "volume.nii.gz"))  # fmt: skip
        assert pred.GetSize() == image.GetSize() and pred.GetOrigin() == image.GetOrigin()
        assert set(np.unique(sitk.GetArrayFromImage(pred))) <= {0, 1, 2}


def test_shards_and_continue_work_on_folder_cases(folder_plugin, case_folders, tmp_path):
    from segforge.inference.predictor import list_jobs

    out = tmp_path / "out"
    first, _ = list_jobs(case_folders, out, (".nii.gz",), 1, part_id=0, num_parts=2)
    second, _ = list_jobs(case_folders, out, (".nii.gz",), 1, part_id=1, num_parts=2)
    assert [(j.case_id, j.images, j.output.name) for j in first + second] == [
        ("a", (case_folders / "a",), "a.nii.gz"),
        ("b", (case_folders / "b",), "b.nii.gz"),
    ]
    assert first[0].reader.name == "volume_folder"
    out.mkdir()
    (out / "a.nii.gz").write_bytes(b"")
    todo, skipped = list_jobs(case_folders, out, (".nii.gz",), 1, skip_existing=True)
    assert ([j.case_id for j in todo], [j.case_id for j in skipped]) == (["b"], ["a"])


def test_listing_rules(folder_plugin, case_folders, tmp_path):
    cases = folder_cases(case_folders, (".nii.gz",), 1)
    found = [(c.case_id, c.folder.name, c.output_ending) for c in cases]
    assert found == [("a", "a", ".nii.gz"), ("b", "b", ".nii.gz")]
    with pytest.raises(SegforgeError, match="the model expects 2 input channels; a series folder"):
        folder_cases(case_folders, (".nii.gz",), 2)
    (case_folders / "c").mkdir()
    with pytest.raises(SegforgeError, match="c is not a series folder, but a next to it is"):
        folder_cases(case_folders, (".nii.gz",), 1)
    shutil.rmtree(case_folders / "c")
    shutil.copy(case_folders / "a" / "volume.nii.gz", case_folders / "x_0000.nii.gz")
    assert folder_cases(case_folders, (".nii.gz",), 1) is None  # CASE_0000 files: the usual listing


def test_unclaimed_folders_keep_the_usual_error(tmp_path):
    (tmp_path / "imagesTr").mkdir()  # a dataset root passed by mistake
    assert folder_cases(tmp_path, (".nii.gz",), 1) is None


def test_dicom_folder_without_the_plugin_names_the_package(tmp_path, run_main):
    if not SHARED.is_dir():
        pytest.skip(f"the TotalSegmentator DICOM example was not found at {SHARED}")
    shutil.copytree(SHARED, tmp_path / "in" / "patient")
    write_checkpoint(tmp_path / "results" / RUN, make_plans((2.0, 1.0, 1.5)))
    code, _, err = run_main(["-p", "no:dicom", "predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                             "-m", str(tmp_path / "results" / RUN), "--device", "cpu"])  # fmt: skip
    assert code != 0 and "Traceback" not in err
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert line.endswith("patient is a DICOM series folder, but no installed image IO reads DICOM")
    assert "hint: `pip install segforge-dicom`" in err
    assert not (tmp_path / "out").exists()
