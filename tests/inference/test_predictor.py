"""Predicting folders: sharding, skipping, channel checks, overlap == sequential == the direct API."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from inference_helpers import make_plans, write_checkpoint

from segforge.errors import UsageError
from segforge.inference.model_loading import load_ensemble
from segforge.inference.predictor import CasePipeline, list_jobs, run_jobs, shard
from segforge.inference.sliding_window import SlidingWindowSettings
from segforge.testing.synthetic import make_task

ENDINGS = (".nii.gz", ".nii", ".mha")


def test_shards_are_disjoint_deterministic_and_cover_everything():
    ids = [f"case_{i:03d}" for i in (7, 3, 9, 1, 4, 0, 2)]
    parts = [shard(ids, k, 3) for k in range(3)]
    assert parts[0] == ["case_000", "case_003", "case_009"]  # sorted: 000 001 002 003 004 007 009
    assert sorted(sum(parts, [])) == sorted(ids)
    assert all(not set(a) & set(b) for i, a in enumerate(parts) for b in parts[i + 1 :])
    with pytest.raises(UsageError, match="--part-id 2 / --num-parts 2 is not a valid shard"):
        shard(ids, 2, 2)


def test_list_jobs_checks_channels_and_skips_existing(tmp_path):
    task = make_task(tmp_path / "Task099_Test", n_cases=0, n_test=3, channels=2)
    out = tmp_path / "out"
    jobs, skipped = list_jobs(task / "imagesTs", out, ENDINGS, 2)
    assert [j.case_id for j in jobs] == ["case_000", "case_001", "case_002"] and skipped == []
    assert [p.name for p in jobs[1].images] == ["case_001_0000.nii.gz", "case_001_0001.nii.gz"]
    assert jobs[1].output == out / "case_001.nii.gz"
    out.mkdir()
    (out / "case_001.nii.gz").write_bytes(b"x")
    jobs, skipped = list_jobs(task / "imagesTs", out, ENDINGS, 2, skip_existing=True)
    assert [j.case_id for j in jobs] == ["case_000", "case_002"] and [j.case_id for j in skipped] == ["case_001"]
    (task / "imagesTs" / "case_002_0001.nii.gz").unlink()
    with pytest.raises(UsageError, match="case 'case_002' in .* is missing channel 1: case_002_0001.nii.gz"):
        list_jobs(task / "imagesTs", out, ENDINGS, 2)


def test_input_folder_without_channel_files_is_explained(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.nii.gz").write_bytes(b"x")
    with pytest.raises(UsageError, match="no images named CASE_0000<ending>"):
        list_jobs(tmp_path / "in", tmp_path / "out", ENDINGS, 1)


@pytest.fixture
def model_and_cases(tmp_path):
    task = make_task(tmp_path / "Task099_Test", n_cases=0, n_test=3, shape=(12, 16, 14), spacing=(2.0, 1.0, 1.5))
    plans = make_plans((1.0, 1.0, 1.5))  # resampled along z on the way in and back on export
    run = tmp_path / "results" / "run"
    write_checkpoint(run / "fold_0", plans, seed=0)
    write_checkpoint(run / "fold_1", plans, seed=1)
    return run, task / "imagesTs"


def test_overlapped_and_sequential_runs_write_the_direct_prediction(tmp_path, model_and_cases):
    run, images = model_and_cases
    networks, model = load_ensemble(run, None, "final")
    settings = SlidingWindowSettings(tuple(model.configuration.patch_size), mirror_axes=(0, 1, 2))
    pipeline = CasePipeline(networks, model, settings)
    outputs = {}
    for name, overlap in (("seq", False), ("overlap", True)):
        jobs, _ = list_jobs(images, tmp_path / name, ENDINGS, 1)
        events: list = []
        results = run_jobs(pipeline, jobs, overlap=overlap, progress=lambda *e, ev=events: ev.append(e))
        assert [r.case_id for r in results] == ["case_000", "case_001", "case_002"]
        assert all(set(r.seconds) == {"preprocess", "predict", "export"} for r in results)
        assert ("case", "case_002", 3, 3) in events and any(e[0] == "tiles" for e in events)
        outputs[name] = [sitk.GetArrayFromImage(sitk.ReadImage(str(r.output))) for r in results]
    job = list_jobs(images, tmp_path / "direct", ENDINGS, 1)[0][0]
    case = pipeline.preprocess(job)
    direct = pipeline.export(pipeline.predict(case), case, job)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(direct)))
    raw = sitk.ReadImage(str(job.images[0]))
    assert expected.shape == sitk.GetArrayFromImage(raw).shape
    np.testing.assert_array_equal(outputs["seq"][0], expected)
    for a, b in zip(outputs["seq"], outputs["overlap"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_worker_errors_keep_their_message_and_hint(tmp_path, model_and_cases):
    run, images = model_and_cases
    networks, model = load_ensemble(run, ["0"], "final")
    pipeline = CasePipeline(networks, model, SlidingWindowSettings(tuple(model.configuration.patch_size)))
    jobs, _ = list_jobs(images, tmp_path / "out", ENDINGS, 1)
    jobs[1].images[0].write_bytes(b"broken")
    with pytest.raises(Exception) as info:
        run_jobs(pipeline, jobs, overlap=True)
    assert "case_001_0000.nii.gz" in str(info.value) and getattr(info.value, "hint", None)
    assert (tmp_path / "out" / "case_000.nii.gz").is_file()  # the case before the broken one was written


def test_2d_configuration_predicts_3d_images_slice_by_slice(tmp_path):
    task = make_task(tmp_path / "Task099_Test", n_cases=0, n_test=1, shape=(6, 16, 14), spacing=(3.0, 1.0, 1.0))
    params = {"features_per_stage": [4, 8], "kernel_sizes": [[3, 3], [3, 3]], "strides": [[1, 1], [2, 2]]}
    plans = make_plans((1.0, 1.0), patch=(8, 8), name="2d", network_params=params)
    write_checkpoint(tmp_path / "run" / "fold_0", plans)
    networks, model = load_ensemble(tmp_path / "run", None, "final")
    assert model.configuration.dims == 2 and model.mirror_axes == (0, 1)
    settings = SlidingWindowSettings((8, 8), mirror_axes=model.mirror_axes, precision="fp32")
    pipeline = CasePipeline(networks, model, settings)
    job = list_jobs(task / "imagesTs", tmp_path / "out", ENDINGS, 1)[0][0]
    case = pipeline.preprocess(job)
    logits = pipeline.predict(case)
    assert logits.shape == (3, *case.data.shape[1:])
    # slice by slice: the 2D network applied to one slice on its own gives that slice's logits
    alone = pipeline.window.predict_logits(case.data[:, 2:3])
    torch.testing.assert_close(logits[:, 2:3], alone)
    out = pipeline.export(logits, case, job)
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert written.shape == (6, 16, 14) and set(np.unique(written)) <= {0, 1, 2}
