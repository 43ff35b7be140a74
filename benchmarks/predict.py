"""Prediction benchmark: segforge vs nnU-Net v2 (and MONAI) on the same network and weights, one run, CPU.

Run it in the environment that has nnU-Net v2 and MONAI (``nox -s peers`` builds it in .nox/peers;
benchmarks/_paths.py lists the paths and variables)::

    .nox/peers/bin/python benchmarks/predict.py                     # (a) without mirroring + (b)
    .nox/peers/bin/python benchmarks/predict.py --parts a --mirror on
    .nox/peers/bin/python benchmarks/predict.py --parts b --keep /tmp/pb  # any scratch folder

(a) **Sliding-window throughput** on a CT-like volume (default 128x256x256, CT-normalized) with
    nnU-Net's default 3d_fullres network for BASELINES.md's CT plan (PlainConvUNet, 6 stages
    32..320, patch 96x160x128, 31.1 M parameters; weights trained for a few minutes on CT-like data by
    ``ct_weights.py``, or random with ``--a-weights random``): nnU-Net's
    ``predict_sliding_window_return_logits``, MONAI's ``sliding_window_inference`` (Gaussian,
    overlap 0.5; MONAI has no mirroring of its own: with mirroring its predictor averages the
    network over the 8 flips of each window, as nnU-Net does) and segforge's sliding window in
    fp32 (eager, and compiled: ``segforge predict --compile``) and bf16 autocast; without
    mirroring also segforge with nnU-Net's numerics (float16 accumulator and Gaussian), which
    shows where the fp32 run's argmax differences come from. ``--runs`` picks a subset.
    Timed is the sliding-window call only (a compiled run's first-tile compile included);
    every run is its own process (peak RSS = its process tree, sampled). Compiled runs share
    an inductor kernel cache in the work folder: a warm-up process fills it first and reports
    the cold compile time, so the timed runs see the warm cache a user's second run sees.
    Argmax agreement with nnU-Net is reported, overall and where nnU-Net's float16 weight sum
    is >= 1e-2 (its logits keep their precision there).
(b) **End to end** (raw NIfTI in, segmentation file out): ``nnUNetv2_predict_from_modelfolder``
    vs ``segforge predict`` on one CT-like image (default 300x512x512, spacing 1.25x0.7x0.7 mm,
    resampled to the plan's 2.5x0.8x0.8), 14 classes, a small network (the CT topology with 8
    base features), no mirroring. Both CLIs with their defaults; peak RSS summed over the
    process tree (workers included), wall time, and the agreement of the two segmentations.

Each child runs with the same number of torch threads (``--threads``, default 2). Results are
printed as tables and written as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _paths import nnunet_ref
from _rss import run_measured

CT_PATCH = (96, 160, 128)
CT_KERNELS = [[1, 3, 3]] + [[3, 3, 3]] * 5
CT_STRIDES = [[1, 1, 1], [1, 2, 2]] + [[2, 2, 2]] * 4
POLL_S = 0.05
#: (a) runs, RUNNER_PRECISION; segforge-compiled = ``segforge predict --compile``; segforge-onnxruntime /
#: -openvino = ``--backend onnxruntime|openvino`` (export cached by a warm-up run, its time reported apart);
#: segforge-default_auto = plain ``segforge predict`` (``--precision auto --backend auto``, bf16 only where native
#: and SEGFORGE_DISABLE_BF16 unset; the backend chosen from the run's tile evaluations)
A_RUNS = ("nnunet_fp32", "monai_fp32", "segforge_fp32", "segforge-compiled_fp32", "segforge_bf16",
          "segforge-acc16_fp32", "segforge-onnxruntime_fp32", "segforge-openvino_fp32",
          "segforge-default_auto")  # fmt: skip
EXPORTED_RUNNERS = {"segforge-onnxruntime": "onnxruntime", "segforge-openvino": "openvino"}
HERE = Path(__file__).resolve().parent


# -- networks and weights ------------------------------------------------------------------------
def nnunet_network(features: list[int], num_classes: int, deep_supervision: bool):  # noqa: ANN201
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    n = len(features)
    return PlainConvUNet(
        1, n, features, torch.nn.Conv3d, CT_KERNELS[:n], CT_STRIDES[:n], [2] * n, num_classes, [2] * (n - 1),
        True, torch.nn.InstanceNorm3d, {"eps": 1e-5, "affine": True}, None, None, torch.nn.LeakyReLU,
        {"inplace": True}, deep_supervision=deep_supervision,
    )  # fmt: skip


def segforge_params(features: list[int]) -> dict:
    n = len(features)
    return {"features_per_stage": features, "kernel_sizes": CT_KERNELS[:n], "strides": CT_STRIDES[:n]}


def to_segforge_weights(nnunet_state: dict, segforge_state: dict) -> dict:
    """nnU-Net's PlainConvUNet state dict in segforge's generic_unet names (same tensors, same order).

    nnU-Net lists some tensors twice (``all_modules`` aliases, the encoder again under
    ``decoder.encoder``); without those, both networks register the same tensors in the same order.
    """
    unique = [
        (k, v) for k, v in nnunet_state.items() if "all_modules" not in k and not k.startswith("decoder.encoder.")
    ]
    if len(unique) != len(segforge_state):
        raise SystemExit(f"cannot map weights: {len(unique)} nnU-Net tensors vs {len(segforge_state)} segforge")
    out = {}
    for (name, tensor), (ours, target) in zip(unique, segforge_state.items(), strict=True):
        if tensor.shape != target.shape:
            raise SystemExit(f"cannot map {name} {tuple(tensor.shape)} to {ours} {tuple(target.shape)}")
        out[ours] = tensor.clone()
    return out


def segforge_network(features: list[int], num_classes: int, nnunet_state: dict, deep_supervision: bool):  # noqa: ANN201
    from segforge.networks.generic_unet import GenericUNetBuilder

    net = GenericUNetBuilder().build(segforge_params(features), 1, num_classes, deep_supervision=deep_supervision)
    net.load_state_dict(to_segforge_weights(nnunet_state, net.state_dict()))
    return net.eval()


# -- data ---------------------------------------------------------------------------------------
def ct_like_hu(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A body of soft tissue in air holding organs and lesions (int16 HU), a few per axis."""
    return ct_like_case(shape, seed)[0]


def ct_like_case(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ct_like_hu` and its labels (0 air, 1 body, 2 organs and lesions)."""
    rng = np.random.default_rng(seed)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    z, y, x = (g.astype(np.float32) / s * 2 - 1 for g, s in zip(grids, shape, strict=True))
    hu = np.full(shape, -1000.0, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    body = np.broadcast_to((y / 0.8) ** 2 + (x / 0.9) ** 2 <= 1.0, shape)
    hu[body] = 40.0
    labels[body] = 1
    for _ in range(12):
        c, r = rng.uniform(-0.5, 0.5, 3), rng.uniform(0.08, 0.3, 3)
        inside = ((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2 <= 1.0
        hu[inside] = rng.uniform(60, 300)
        labels[inside] = 2
    hu += rng.normal(0.0, 20.0, shape).astype(np.float32)
    return np.round(hu).astype(np.int16), labels


def ct_normalized(hu: np.ndarray) -> np.ndarray:
    """nnU-Net's CT normalization with the CT-like dataset's foreground statistics."""
    out = np.clip(hu.astype(np.float32), 71.0, 291.0)
    return ((out - 152.89) / 59.95)[None].astype(np.float32)


# -- measuring ------------------------------------------------------------------------------------
def measure(cmd: list[str], env: dict[str, str], log: Path, line_times: list | None = None) -> dict:
    """Run ``cmd``: wall seconds, peak RSS summed over its process tree, exit code, last JSON line of stdout."""
    wall, peak, returncode = run_measured(cmd, env, log, POLL_S, line_times)
    result = {"wall_s": wall, "peak_rss_gb": peak / 1e9, "returncode": returncode}
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            result.update(json.loads(line))
            break
    if returncode != 0:
        print(f"  FAILED ({returncode}); log: {log}\n" + log.read_text(errors="replace")[-3000:], flush=True)
    return result


def child_env(threads: int) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("SEGFORGE_DEBUG", None)
    return env


# -- part (a): sliding window -----------------------------------------------------------------------
def child_sliding_window(args: argparse.Namespace) -> None:
    """One sliding-window run in this process; prints a JSON line and saves the argmax."""
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    image = np.load(work / "a_input.npy")
    state = torch.load(work / "a_weights.pt", weights_only=True)
    mirror = (0, 1, 2) if args.mirror else None
    features = [32, 64, 128, 256, 320, 320]
    patch = tuple(args.patch_a)
    if args.runner in ("nnunet", "monai"):
        net = nnunet_network(features, 3, deep_supervision=False)
        net.load_state_dict(state)
        net.eval()
        run = _nnunet_runner(net, mirror, patch) if args.runner == "nnunet" else _monai_runner(net, mirror, patch)
    else:
        net = segforge_network(features, 3, state, False)
        if args.warmup:
            print(json.dumps(_compile_warmup(net, patch, args.precision)), flush=True)
            return
        backend = EXPORTED_RUNNERS.get(args.runner, "auto" if args.runner == "segforge-default" else "torch")
        if args.warmup_export:
            print(json.dumps(_export_warmup(net, patch, backend)), flush=True)
            return
        run = _segforge_runner(net, mirror, args.precision, patch, nnunet_accumulator=args.runner == "segforge-acc16",
                               compile_=args.runner == "segforge-compiled", backend=backend,
                               image_shape=image.shape[1:])  # fmt: skip
    start = time.perf_counter()
    logits = run(image)
    seconds = time.perf_counter() - start
    np.save(work / f"a_{args.tag}.npy", logits.argmax(0).numpy().astype(np.uint8))
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "maxrss_gb": maxrss / 1e9}), flush=True)


def _nnunet_runner(net, mirror, patch):  # noqa: ANN001, ANN202
    from types import SimpleNamespace

    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror is not None,
                                perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                allow_tqdm=False)  # fmt: skip
    predictor.network = net
    predictor.configuration_manager = SimpleNamespace(patch_size=list(patch))
    predictor.label_manager = SimpleNamespace(num_segmentation_heads=3)
    predictor.allowed_mirroring_axes = mirror
    return lambda image: predictor.predict_sliding_window_return_logits(torch.from_numpy(image)).float()


def _monai_runner(net, mirror, patch):  # noqa: ANN001, ANN202
    """MONAI's sliding window; with mirroring its predictor is the network averaged over the 8 flips of each
    window (MONAI takes any callable as predictor; it has no mirroring of its own), as nnU-Net mirrors."""
    import itertools

    import torch
    from monai.inferers import sliding_window_inference

    flips = [()]
    if mirror is not None:
        flips = [tuple(a + 2 for a in c) for k in range(len(mirror) + 1) for c in itertools.combinations(mirror, k)]

    def predictor(window):  # noqa: ANN001, ANN202
        out = net(window)
        for dims in flips[1:]:
            out += torch.flip(net(torch.flip(window, dims)), dims)
        return out / len(flips)

    def run(image: np.ndarray):  # noqa: ANN202
        with torch.inference_mode():
            out = sliding_window_inference(torch.from_numpy(image)[None], patch, 1, predictor, overlap=0.5,
                                           mode="gaussian", sigma_scale=0.125)  # fmt: skip
        return out[0]

    return run


def _compile_warmup(net, patch, precision) -> dict:  # noqa: ANN001
    """Compile ``net`` for one tile with the (empty) kernel cache: the one-time cost of a first --compile run."""
    import torch

    from segforge.inference.compiled import CompiledForward

    forward = CompiledForward(net)
    x = torch.zeros(1, 1, *patch)
    times = []
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), ctx:
        for _ in range(2):
            start = time.perf_counter()
            forward(x)
            times.append(time.perf_counter() - start)
    if forward.failed:
        raise SystemExit(f"compile failed: {forward.failed}")
    return {"cold_compile_s": times[0] - times[1], "compiled_pass_s": times[1]}


def _export_warmup(net, patch, backend) -> dict:  # noqa: ANN001
    """Export the network once into the run's cache (the one-time cost a model's first exported run pays)."""
    import torch

    from segforge.inference.backends.exported import export_onnx

    start = time.perf_counter()
    export_onnx(net, torch.zeros((1, 1, *patch)))
    return {"export_s": time.perf_counter() - start, "backend": backend}


def _segforge_runner(
    net,
    mirror,
    precision,
    patch,
    nnunet_accumulator=False,
    compile_=False,
    backend="torch",  # noqa: ANN001, ANN202
    image_shape=None,
):  # noqa: ANN001
    """``nnunet_accumulator``: nnU-Net's numerics (float16 accumulator, its unclamped float16 Gaussian) to show
    that the argmax differences of the fp32 run come from nnU-Net's float16 rounding, not from the tiling."""
    from segforge.inference import sliding_window
    from segforge.inference.sliding_window import SlidingWindowPredictor, SlidingWindowSettings

    accumulator = None
    if nnunet_accumulator:
        sliding_window.FP16_MAP_FLOOR = 0.0
        accumulator = "float16"
    evaluations = None
    if backend == "auto" and image_shape is not None:  # what segforge predict estimates from the case's header
        from segforge.inference.work_estimate import tiles_for

        evaluations = tiles_for(tuple(image_shape), patch, 0.5) * (8 if mirror else 1)
    settings = SlidingWindowSettings(patch, mirror_axes=mirror, precision=precision, accumulator_dtype=accumulator,
                                     compile=compile_, backend=backend, expected_evaluations=evaluations)  # fmt: skip
    predictor = SlidingWindowPredictor(net, settings)
    return lambda image: predictor.predict_logits(image).float()


def prepare_a(work: Path, shape: tuple[int, ...], weights: str) -> None:
    import torch

    np.save(work / "a_input.npy", ct_normalized(ct_like_hu(shape)))

    def make_net():  # noqa: ANN202
        return nnunet_network([32, 64, 128, 256, 320, 320], 3, deep_supervision=False)

    if weights == "random":
        torch.manual_seed(0)
        state = make_net().state_dict()
    else:
        from ct_weights import trained_state

        state = trained_state(Path(weights) if weights != "trained" else HERE / ".ct_weights.pt", make_net)
    torch.save(state, work / "a_weights.pt")


def run_a(work: Path, shape: tuple[int, ...], patch: tuple[int, ...], mirror_modes: list[bool], args) -> list[dict]:  # noqa: ANN001
    threads = args.threads
    prepare_a(work, shape, args.a_weights)
    runs = []
    env = {**child_env(threads), "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor_cache"),
           "SEGFORGE_CACHE": str(work / "segforge_cache")}  # fmt: skip
    for mirror in mirror_modes:
        plan = [tuple(name.split("_")) for name in args.runs]
        plan = [(runner, precision) for runner, precision in plan if not (mirror and runner == "segforge-acc16")]
        for runner, precision in plan:
            if runner == "segforge-compiled" and not any(r.get("warmup") == precision for r in runs):
                runs.append(_warm_up(work, patch, precision, threads, env))
            if runner in EXPORTED_RUNNERS and not any(r.get("export_warmup") == runner for r in runs):
                runs.append(_warm_up_export(work, patch, runner, threads, env))
            tag = f"{runner}_{precision}_{'mirror' if mirror else 'plain'}"
            cmd = [sys.executable, __file__, "--child", "a", "--runner", runner, "--precision", precision,
                   "--work", str(work), "--tag", tag, "--threads", str(threads)]  # fmt: skip
            cmd += ["--patch-a", *map(str, patch)] + (["--mirror-child"] if mirror else [])
            print(f"(a) {tag} ...", flush=True)
            result = {"part": "a", "runner": runner, "precision": precision, "mirror": mirror, "tag": tag,
                      **measure(cmd, env, work / f"a_{tag}.log")}  # fmt: skip
            print(f"    {result.get('seconds', float('nan')):.1f} s, peak {result['peak_rss_gb']:.2f} GB", flush=True)
            runs.append(result)
        _agreement(work, runs, mirror, patch)
    voxels = int(np.prod(shape))
    for r in runs:
        r["voxels_per_s"] = voxels / r["seconds"] if r.get("seconds") else None
    return runs


def _warm_up(work: Path, patch: tuple[int, ...], precision: str, threads: int, env: dict[str, str]) -> dict:
    """Fill the (emptied) inductor kernel cache with one compile; its time is the cold-compile cost."""
    import shutil

    shutil.rmtree(work / "inductor_cache", ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", "a", "--runner", "segforge-compiled", "--precision", precision,
           "--work", str(work), "--tag", "warmup", "--threads", str(threads), "--warmup",
           "--patch-a", *map(str, patch)]  # fmt: skip
    print(f"(a) compile warm-up {precision} ...", flush=True)
    result = {"part": "a-warmup", "warmup": precision, **measure(cmd, env, work / f"a_warmup_{precision}.log")}
    print(f"    cold compile {result.get('cold_compile_s', float('nan')):.1f} s", flush=True)
    return result


def _warm_up_export(work: Path, patch: tuple[int, ...], runner: str, threads: int, env: dict[str, str]) -> dict:
    """Export the network into the run's cache once; the timed run then opens it as a user's second run does."""
    cmd = [sys.executable, __file__, "--child", "a", "--runner", runner, "--precision", "fp32", "--work", str(work),
           "--tag", "export", "--threads", str(threads), "--warmup-export", "--patch-a", *map(str, patch)]  # fmt: skip
    print(f"(a) {runner} export ...", flush=True)
    result = {"part": "a-warmup", "export_warmup": runner, **measure(cmd, env, work / f"a_export_{runner}.log")}
    print(f"    export {result.get('export_s', float('nan')):.1f} s", flush=True)
    return result


def _agreement(work: Path, runs: list[dict], mirror: bool, patch: tuple[int, ...]) -> None:
    """Argmax agreement with nnU-Net: overall, and apart from where nnU-Net's float16 sums keep few bits.

    nnU-Net accumulates ``logits * gaussian`` and the Gaussian itself in float16; the Gaussian's tails
    (4 sigma at a tile's faces, x10 scaling) are float16 subnormals, so next to the volume's faces and edges,
    where only tails overlap, its logits carry a few bits. ``low_weight`` marks the voxels whose summed
    float16 weight in nnU-Net is below 1e-2 (at least 1000x less than a tile centre's 10).
    """
    suffix = "mirror" if mirror else "plain"
    ref_path = work / f"a_nnunet_fp32_{suffix}.npy"
    if not ref_path.exists():
        return
    ref = np.load(ref_path)
    low_weight = _nnunet_weight_sum(ref.shape, patch) < 1e-2
    for r in (r for r in runs if r["part"] == "a"):
        path = work / f"a_{r['tag']}.npy"
        if r["mirror"] == mirror and path.exists():
            same = np.load(path) == ref
            r["argmax_agreement_vs_nnunet"] = float(same.mean())
            r["agreement_where_nnunet_weight_ge_1e-2"] = float(same[~low_weight].mean())
            r["share_of_differences_in_low_weight"] = float((~same & low_weight).sum() / max(1, (~same).sum()))
            r["low_weight_share_of_volume"] = float(low_weight.mean())


def _nnunet_weight_sum(shape: tuple[int, ...], patch: tuple[int, ...]) -> np.ndarray:
    """nnU-Net's ``n_predictions`` (float16 sum of its Gaussian over the tiles), from its own functions."""
    import torch
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian, compute_steps_for_sliding_window

    gaussian = compute_gaussian(patch, sigma_scale=1.0 / 8, value_scaling_factor=10, device=torch.device("cpu"))
    total = torch.zeros(shape, dtype=torch.half)
    steps = compute_steps_for_sliding_window(shape, patch, 0.5)
    for z in steps[0]:
        for y in steps[1]:
            for x in steps[2]:
                total[z : z + patch[0], y : y + patch[1], x : x + patch[2]] += gaussian
    return total.float().numpy()


# -- part (b): end to end ------------------------------------------------------------------------------
B_FEATURES = [8, 16, 32, 64, 128, 256]
B_CLASSES = 14
B_SPACING_IMAGE = (1.25, 0.7, 0.7)
B_SPACING_PLAN = [2.5, 0.8, 0.8]


def _ct_like_template() -> Path:
    """nnU-Net's own plans for BASELINES.md's CT-like dataset (Dataset900), planned here if no earlier run left them.

    ``nnUNetv2_plan_and_preprocess --no_pp`` on the 20 synthetic cases ``preprocess.py`` writes (fingerprint and
    planning only, ~1 min): the 3d_fullres topology and patch of a 96x160x160 CT at 2.5x0.8x0.8 mm.
    """
    import subprocess

    from preprocess import CT_LIKE_ID, write_ct_like_dataset

    base = nnunet_ref()
    template = base / "nnUNet_preprocessed" / f"Dataset{CT_LIKE_ID:03d}_CTLike"
    if (template / "nnUNetPlans.json").exists():
        return template
    print(f"planning nnU-Net's CT-like template once (in {base}) ...", flush=True)
    write_ct_like_dataset(base / "nnUNet_raw")
    env = {**os.environ, **{name: str(base / name) for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}}
    exe = Path(sys.executable).parent / "nnUNetv2_plan_and_preprocess"
    subprocess.run([str(exe), "-d", str(CT_LIKE_ID), "--no_pp", "-npfp", "2"], env=env, check=True)
    return template


def _nnunet_plans() -> dict:
    template = _ct_like_template()
    plans = json.loads((template / "nnUNetPlans.json").read_text())
    conf = plans["configurations"]["3d_fullres"]
    conf["spacing"] = B_SPACING_PLAN
    conf["architecture"]["arch_kwargs"]["features_per_stage"] = B_FEATURES
    plans["configurations"] = {"3d_fullres": conf}
    plans["dataset_name"] = "Dataset901_CTBig"
    return plans


def _segforge_plans(nnunet_plans: dict):  # noqa: ANN202
    from segforge.config.plans import ConfigurationPlan, IntensityStats, NetworkSpec, Plans

    conf = nnunet_plans["configurations"]["3d_fullres"]
    stats = IntensityStats(**nnunet_plans["foreground_intensity_properties_per_channel"]["0"])
    cp = ConfigurationPlan(
        name="3d_fullres", data_identifier="segforgePlans_3d_fullres", spacing=conf["spacing"],
        patch_size=conf["patch_size"], batch_size=2, median_image_size_in_voxels=conf["median_image_size_in_voxels"],
        normalization=["ct"], use_mask_for_norm=[False],
        network=NetworkSpec(name="generic_unet", version="1.0", params=segforge_params(B_FEATURES)),
    )  # fmt: skip
    return Plans(
        dataset_name="Task901_CTBig", plans_name="segforgePlans", planner="default", planner_version="1",
        segforge_version="0", fingerprint_digest="benchmark", transpose_forward=[0, 1, 2],
        transpose_backward=[0, 1, 2], original_median_spacing_after_transp=list(B_SPACING_IMAGE),
        original_median_shape_after_transp=[300.0, 512.0, 512.0],
        labels={"background": 0, **{f"class{i}": i for i in range(1, B_CLASSES)}},
        foreground_intensity_properties_per_channel={"0": stats}, configurations={"3d_fullres": cp},
    )  # fmt: skip


def prepare_b(work: Path, shape: tuple[int, ...]) -> tuple[Path, Path, Path]:
    """The raw image, nnU-Net's model folder and segforge's run folder, with the same weights."""
    import SimpleITK as sitk
    import torch

    from segforge.training.checkpoint import CHECKPOINT_FORMAT_VERSION, CHECKPOINT_KEYS, save_checkpoint

    images = work / "b_in"
    images.mkdir(exist_ok=True)
    itk = sitk.GetImageFromArray(ct_like_hu(shape, seed=1))
    itk.SetSpacing([float(s) for s in B_SPACING_IMAGE[::-1]])
    sitk.WriteImage(itk, str(images / "ct_000_0000.nii.gz"), True)
    torch.manual_seed(0)
    net = nnunet_network(B_FEATURES, B_CLASSES, deep_supervision=True)
    plans = _nnunet_plans()
    nn_dir = work / "b_nnunet_model"
    (nn_dir / "fold_0").mkdir(parents=True, exist_ok=True)
    (nn_dir / "plans.json").write_text(json.dumps(plans, indent=1))
    labels = {"background": 0, **{f"class{i}": i for i in range(1, B_CLASSES)}}
    dataset = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 1, "file_ending": ".nii.gz"}
    (nn_dir / "dataset.json").write_text(json.dumps(dataset, indent=1))
    torch.save({"network_weights": net.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "3d_fullres"}, "inference_allowed_mirroring_axes": (0, 1, 2)},
               nn_dir / "fold_0" / "checkpoint_final.pth")  # fmt: skip
    ours = segforge_network(B_FEATURES, B_CLASSES, net.state_dict(), deep_supervision=True)
    sf_dir = work / "b_segforge_results" / "Task901_CTBig" / "3d_fullres" / "default__generic_unet__segforgePlans"
    payload = {key: None for key in CHECKPOINT_KEYS}
    payload.update(format_version=CHECKPOINT_FORMAT_VERSION, segforge_version="0", network_weights=ours.state_dict(),
                   optimizer_state={}, schedule={}, progress={"iteration": 0}, logs={}, rng={}, seed=0,
                   plans_json=_segforge_plans(plans).model_dump_json(), configuration="3d_fullres",
                   network={"name": "generic_unet", "version": "1.0", "params": segforge_params(B_FEATURES),
                            "in_channels": 1, "num_classes": B_CLASSES},
                   trainer={"name": "default", "version": "1.0", "params": {}}, loss={}, versions={})  # fmt: skip
    (sf_dir / "fold_0").mkdir(parents=True, exist_ok=True)
    save_checkpoint(sf_dir / "fold_0" / "checkpoint_final.pt", payload)
    return images, nn_dir, sf_dir


def run_b(work: Path, shape: tuple[int, ...], threads: int, overlap: bool, precision: str) -> list[dict]:
    images, nn_dir, sf_dir = prepare_b(work, shape)
    for path in images.iterdir():  # warm the page cache for both
        path.read_bytes()
    bin_dir = Path(sys.executable).parent
    nn_cmd = [str(bin_dir / "nnUNetv2_predict_from_modelfolder"), "-i", str(images), "-o",
              str(work / "b_out_nnunet"), "-m", str(nn_dir), "-f", "0", "-chk", "checkpoint_final.pth",
              "--disable_tta", "-device", "cpu"]  # fmt: skip
    sf_cmd = [str(bin_dir / "segforge"), "predict", "-i", str(images), "-o", str(work / "b_out_segforge"),
              "-m", str(sf_dir), "-f", "0", "--no-tta", "--device", "cpu", "--precision", precision]  # fmt: skip
    sf_cmd += ["--overlap"] if overlap else []
    env = child_env(threads)
    env.update(nnUNet_raw=str(work), nnUNet_preprocessed=str(work), nnUNet_results=str(work))
    runs = []
    for name, cmd in (("nnunet", nn_cmd), ("segforge", sf_cmd)):
        print(f"(b) {name} end to end ...", flush=True)
        lines: list[tuple[float, str]] = []
        result = {"part": "b", "runner": name, **measure(cmd, env, work / f"b_{name}.log", lines)}
        result["export_s"] = export_seconds(name, lines, result["wall_s"])
        print(f"    {result['wall_s']:.1f} s (export {result['export_s']:.1f} s), peak {result['peak_rss_gb']:.2f} GB",
              flush=True)  # fmt: skip
        runs.append(result)
    import SimpleITK as sitk

    outs = [work / f"b_out_{n}" / "ct_000.nii.gz" for n in ("nnunet", "segforge")]
    if all(p.exists() for p in outs):
        a, b = (sitk.ReadImage(str(p)) for p in outs)
        runs[1]["agreement_vs_nnunet"] = float((sitk.GetArrayFromImage(a) == sitk.GetArrayFromImage(b)).mean())
        runs[1]["same_geometry"] = a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing())
    return runs


def export_seconds(runner: str, lines: list[tuple[float, str]], wall_s: float) -> float:
    """Seconds spent writing the segmentation (resampling to the original geometry + file), per tool.

    nnU-Net prints "sending off prediction to background worker for resampling and export" when its
    logits are ready and the process ends when the export worker is done (one case): the time from
    that line to the end. segforge reports it in its summary table ("export s" column).
    """
    if runner == "nnunet":
        sent = next((t for t, line in lines if "sending off prediction" in line), None)
        return wall_s - sent if sent is not None else float("nan")
    for _, line in reversed(lines):  # " ct_000   150 x 448 x 448   6.0   67.7   13.2   ct_000.nii.gz"
        tokens = line.replace("│", " ").replace("|", " ").split()
        seconds = [float(t) for t in tokens if re.fullmatch(r"\d+\.\d+", t)]
        if tokens and tokens[0].startswith("ct_") and len(seconds) >= 3:
            return seconds[2]  # preprocess s, predict s, export s
    return float("nan")


# -- report -----------------------------------------------------------------------------------------------
def report(runs: list[dict]) -> None:
    a = [r for r in runs if r["part"] == "a"]
    for w in (r for r in runs if r["part"] == "a-warmup"):
        if "export_warmup" in w:
            print(f"\n(a) {w['export_warmup']}: ONNX export {w.get('export_s', float('nan')):.1f} s once per model; "
                  "the run below opens the cached file")  # fmt: skip
            continue
        cold = w.get("cold_compile_s", float("nan"))
        print(f"\n(a) compile with an empty kernel cache ({w['warmup']}): {cold:.1f} s once; "
              "the compiled runs below use the filled cache")  # fmt: skip
    for mirror in (False, True):
        rows = [r for r in a if r["mirror"] == mirror]
        if not rows:
            continue
        ref = next((r for r in rows if r["runner"] == "nnunet"), None)
        print(f"\n(a) sliding window, mirroring {'on (8 flips)' if mirror else 'off'}")
        print(f"{'run':<22}{'seconds':>9}{'vox/s':>10}{'peak GB':>9}{'speed vs nnU-Net':>18}{'argmax agree':>14}"
              f"{'w>=1e-2':>10}")  # fmt: skip
        for r in rows:
            speed = ref["seconds"] / r["seconds"] if ref and r.get("seconds") and ref.get("seconds") else float("nan")
            agree = r.get("argmax_agreement_vs_nnunet", float("nan"))
            vps = (r.get("voxels_per_s") or 0) / 1e3
            print(f"{r['runner'] + ' ' + r['precision']:<22}{r.get('seconds', float('nan')):>9.1f}"
                  f"{vps:>9.0f}k{r['peak_rss_gb']:>9.2f}{speed:>17.2f}x{agree:>14.4f}"
                  f"{r.get('agreement_where_nnunet_weight_ge_1e-2', float('nan')):>10.4f}")  # fmt: skip
        low = next((r["low_weight_share_of_volume"] for r in rows if "low_weight_share_of_volume" in r), None)
        if low is not None:
            print(f"w>=1e-2: agreement where nnU-Net's float16 weight sum is >= 1e-2 ({1 - low:.1%} of the volume)")
    b = [r for r in runs if r["part"] == "b"]
    if len(b) == 2:
        nn, sf = b
        print("\n(b) end to end, one raw CT-like image, 14 classes, no mirroring")
        print(f"{'run':<12}{'wall s':>9}{'export s':>10}{'peak RSS GB':>13}")
        for r in b:
            export = r.get("export_s", float("nan"))
            print(f"{r['runner']:<12}{r['wall_s']:>9.1f}{export:>10.1f}{r['peak_rss_gb']:>13.2f}")
        print(f"segforge / nnU-Net: peak RSS {sf['peak_rss_gb'] / nn['peak_rss_gb']:.2f}x, "
              f"wall {sf['wall_s'] / nn['wall_s']:.2f}x; segmentation agreement "
              f"{sf.get('agreement_vs_nnunet', float('nan')):.4f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["a", "b"], choices=["a", "b"])
    parser.add_argument("--mirror", default="off", choices=["off", "on", "both"], help="(a) mirroring modes")
    parser.add_argument("--shape-a", nargs=3, type=int, default=[128, 256, 256])
    parser.add_argument("--a-weights", default="trained",
                        help="(a) 'trained' (trained once on CT-like data, cached in benchmarks/.ct_weights.pt), "
                        "'random' (seed 0), or a state-dict file")  # fmt: skip
    parser.add_argument("--patch-a", nargs=3, type=int, default=list(CT_PATCH), help="(a) patch (smoke tests)")
    parser.add_argument("--runs", nargs="+", default=list(A_RUNS), choices=list(A_RUNS),
                        help="(a) runs (segforge-acc16 runs without mirroring only)")  # fmt: skip
    parser.add_argument("--shape-b", nargs=3, type=int, default=[300, 512, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--overlap", action="store_true", help="(b) segforge predict --overlap")
    parser.add_argument("--b-precision", default="auto", help="(b) segforge predict --precision")
    parser.add_argument("--keep", type=Path, help="keep inputs, outputs and logs in this folder")
    parser.add_argument("--json", type=Path, help="write the results here")
    # child mode (internal)
    parser.add_argument("--child", choices=["a"], help=argparse.SUPPRESS)
    parser.add_argument("--runner", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--mirror-child", dest="mirror_child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup-export", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.mirror = args.mirror_child
        child_sliding_window(args)
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="segforge_predict_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.mirror]
    runs: list[dict] = []
    if "a" in args.parts:
        runs += run_a(work, tuple(args.shape_a), tuple(args.patch_a), modes, args)
    if "b" in args.parts:
        runs += run_b(work, tuple(args.shape_b), args.threads, args.overlap, args.b_precision)
    report(runs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    print(f"\nwork folder: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
