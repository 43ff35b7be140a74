"""preprocess_dataset: output layout, resuming, stale cases, parallel == serial, errors naming the case."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from segforge.config.jsonio import load_model
from segforge.config.plans import Plans
from segforge.data.case_store import list_complete_cases, read_case, read_class_locations
from segforge.errors import SegforgeError
from segforge.io.layouts import open_raw_dataset
from segforge.preprocessing.preprocessor import preprocess_dataset, preprocessing_digest
from segforge.testing.synthetic import make_task

N_CASES = 4


@pytest.fixture
def raw(tmp_path: Path):
    return open_raw_dataset(make_task(tmp_path / "raw" / "Task099_Test", n_cases=N_CASES, spacing=(2.0, 1.0, 1.5)))


@pytest.fixture
def plans(make_conf, make_plans) -> Plans:
    fullres = make_conf("3d_fullres", [2.0, 1.0, 1.5])
    return make_plans(
        fullres,
        make_conf("3d_cascade_fullres", [2.0, 1.0, 1.5], data_identifier=fullres.data_identifier),
        make_conf("2d", [1.0, 1.0], normalization=["rescale_0_1"]),
    )


def _folder(root: Path, ident: str) -> Path:
    return root / "Task099_Test" / ident


def test_layout_summary_and_plans_copy(raw, plans: Plans, tmp_path: Path) -> None:
    root = tmp_path / "pp"
    summary = preprocess_dataset(raw, plans, None, root, num_workers=1, progress=False)
    assert sorted(summary.identifiers) == ["segforgePlans_2d", "segforgePlans_3d_fullres"]
    fullres = summary.identifiers["segforgePlans_3d_fullres"]
    assert fullres.configurations == ["3d_fullres", "3d_cascade_fullres"]  # shared data, done once
    assert (fullres.done, fullres.skipped, summary.done) == (N_CASES, 0, 2 * N_CASES)
    assert load_model(root / "Task099_Test" / "segforgePlans.json", Plans) == plans
    data, seg, props = read_case(_folder(root, "segforgePlans_2d"), "case_000")
    assert data.shape == (1, 12, 16, 21) and props.spacing == [2.0, 1.0, 1.0]  # 2d: x resampled 1.5 -> 1.0
    assert 0.0 <= data.min() < 0.05 and 0.95 < data.max() <= 1.0  # rescaled to [0, 1] before resampling
    assert read_class_locations(_folder(root, "segforgePlans_2d"), "case_000").keys() == {1, 2}


def test_rerun_skips_and_stale_or_missing_cases_are_redone(raw, plans: Plans, tmp_path: Path) -> None:
    root = tmp_path / "pp"
    preprocess_dataset(raw, plans, ["3d_fullres"], root, progress=False)
    again = preprocess_dataset(raw, plans, ["3d_fullres"], root, progress=False)
    assert (again.done, again.skipped) == (0, N_CASES)

    folder = _folder(root, "segforgePlans_3d_fullres")
    (folder / "case_001.json").unlink()  # interrupted before its JSON
    image = raw.cases[2].images[0]
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # raw file changed
    resumed = preprocess_dataset(raw, plans, ["3d_fullres"], root, progress=False)
    assert (resumed.done, resumed.skipped) == (2, N_CASES - 2)

    changed = plans.model_copy(deep=True)
    changed.configurations["3d_fullres"].spacing = [2.0, 1.0, 1.0]
    redone = preprocess_dataset(raw, changed, ["3d_fullres"], root, progress=False)
    assert redone.done == N_CASES
    digest = preprocessing_digest(changed, changed.configurations["3d_fullres"])
    assert list_complete_cases(folder, digest) == [c.case_id for c in raw.cases]
    assert read_case(folder, "case_000")[0].shape == (1, 12, 16, 21)


def test_parallel_equals_serial(raw, plans: Plans, tmp_path: Path) -> None:
    serial = preprocess_dataset(raw, plans, None, tmp_path / "a", num_workers=1, progress=False)
    parallel = preprocess_dataset(raw, plans, None, tmp_path / "b", num_workers=2, progress=False)
    assert parallel.done == serial.done == 2 * N_CASES
    for ident in serial.identifiers:
        for case in raw.cases:
            a = read_case(_folder(tmp_path / "a", ident), case.case_id)
            b = read_case(_folder(tmp_path / "b", ident), case.case_id)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
            assert a[2] == b[2]


@pytest.mark.parametrize("workers", [1, 2])
def test_broken_case_is_named_and_finished_cases_stay(raw, plans: Plans, tmp_path: Path, workers: int) -> None:
    raw.cases[0].images[0].write_bytes(b"not an image")
    with pytest.raises(SegforgeError, match=r"case 'case_000': cannot read .*case_000_0000\.nii\.gz") as info:
        preprocess_dataset(raw, plans, ["3d_fullres"], tmp_path / "pp", num_workers=workers, progress=False)
    assert "uncorrupted image" in info.value.hint  # the reader's hint survives the worker process
    digest = preprocessing_digest(plans, plans.configurations["3d_fullres"])
    done = list_complete_cases(_folder(tmp_path / "pp", "segforgePlans_3d_fullres"), digest)
    assert "case_000" not in done
    if workers == 1:  # largest cases go first; the broken file is the smallest, so the others finished
        assert done == ["case_001", "case_002", "case_003"]
