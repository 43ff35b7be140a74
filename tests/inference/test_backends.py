"""Inference backends: the auto decision with a made-up speed model; each exported backend's parity on real tiles."""

from __future__ import annotations

import importlib.util
import sys
import warnings

import numpy as np
import pytest
import torch

from segforge.errors import UsageError
from segforge.inference.backends import make_forward
from segforge.inference.backends.auto import BackendRun
from segforge.inference.backends.choice import PRIORS, Estimate, SpeedMemory, choose_backend, estimates_for
from segforge.inference.sliding_window import SlidingWindowPredictor, SlidingWindowSettings

# -- the decision -------------------------------------------------------------------------------


def test_compile_pays_only_when_enough_work_is_left():
    eager = Estimate("torch", 0.0, 1.0, "measured now")
    compiled = Estimate("compiled", 25.0, 0.8, "prior")
    assert choose_backend([eager, compiled], 100)[0] == "torch"  # 100 s vs 105 s
    assert choose_backend([eager, compiled], 125)[0] == "torch"  # a tie keeps eager
    name, why = choose_backend([eager, compiled], 200)  # 200 s vs 185 s: saves 7.5 %, under the 10 % margin
    assert name == "torch" and why.startswith("torch for ~200 tile evaluations: torch 200 s")
    name, why = choose_backend([eager, compiled], 300)  # 300 s vs 265 s: saves 11.7 %
    assert name == "compiled" and why.startswith("compiled for ~300 tile evaluations: compiled 265 s")


def test_remembered_speeds_scale_with_the_load_now():
    known = {"torch": {"per_eval_s": 2.0, "setup_s": 0.0}, "onnxruntime": {"per_eval_s": 1.0, "setup_s": 30.0}}
    # busier now (eager 4 s instead of 2 s): ONNX Runtime is expected at 2 s; its export is cached
    est = {e.name: e for e in estimates_for(4.0, ["compiled", "onnxruntime"], known, exported_cached=True)}
    assert est["onnxruntime"].per_eval_s == 2.0 and est["onnxruntime"].setup_s == 0.0
    assert est["compiled"].source == "prior"
    assert est["compiled"].per_eval_s == pytest.approx(4.0 * PRIORS["compiled"][0])
    # never measured here and no prior: not a candidate
    assert [e.name for e in estimates_for(4.0, ["openvino"], known, exported_cached=False)] == ["torch"]


def test_auto_stays_eager_without_an_estimate_of_the_work(tmp_path):
    run = BackendRun("auto", expected_evaluations=None, memory=SpeedMemory(tmp_path / "speeds.json"))
    run.decide(torch.nn.Conv3d(1, 2, 1), torch.zeros(1, 1, 4, 4, 4), eager_per_eval=1.0)
    assert run.chosen == "torch" and "no estimate" in run.reason


def test_auto_uses_what_an_earlier_run_measured(tmp_path, monkeypatch):
    from segforge.inference.backends import auto

    monkeypatch.setattr(auto, "available_backends", lambda device: ["compiled", "onnxruntime"])
    monkeypatch.setitem(PRIORS, "compiled", (0.8, 25.0))
    memory = SpeedMemory(tmp_path / "speeds.json")
    net, x = torch.nn.Conv3d(1, 2, 1), torch.zeros(2, 1, 4, 4, 4)
    first = BackendRun("auto", expected_evaluations=1000, memory=memory)
    first.decide(net, x, eager_per_eval=1.0)
    assert first.chosen == "compiled"  # only the prior is known: 25 + 1000 x 0.8 < 1000
    signature = next(iter(memory.load()))
    memory.record(signature, "onnxruntime", per_eval_s=0.5, setup_s=30.0)
    second = BackendRun("auto", expected_evaluations=1000, memory=memory)
    second.decide(net, x, eager_per_eval=1.0)
    assert second.chosen == "onnxruntime" and "measured here before" in second.reason


def test_auto_decides_from_the_second_eager_batch_not_the_cold_first(tmp_path, monkeypatch):
    """The first pass pays one-time costs (heap growth, kernel creation): timing it would make compiling look good."""
    from segforge.inference.backends import auto

    clock = {"now": 0.0}
    monkeypatch.setattr(auto.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(auto, "available_backends", lambda device: ["compiled"])
    monkeypatch.setitem(PRIORS, "compiled", (0.7, 25.0))

    class Net(torch.nn.Conv3d):
        calls = 0

        def forward(self, x):
            Net.calls += 1
            clock["now"] += 2.0 if Net.calls == 1 else 1.0  # cold first pass, then steady
            return super().forward(x)

    memory = SpeedMemory(tmp_path / "speeds.json")
    run = BackendRun("auto", expected_evaluations=100, memory=memory)
    forward = run.forward_for(Net(1, 2, 1))
    x = torch.zeros(1, 1, 4, 4, 4)
    forward(x)
    assert run.chosen is None  # timed cold, 98 more passes: compile 25 + 98 x 1.4 = 162 s < 0.9 x eager 196 s
    forward(x)
    assert run.chosen == "torch" and "98 x 1 s" in run.reason  # steady: compile 25 + 98 x 0.7 = 94 s > 0.9 x 98 s
    assert next(iter(memory.load().values()))["torch"]["per_eval_s"] == 1.0


def test_unknown_backend_and_missing_extra_are_one_line_errors(monkeypatch):
    with pytest.raises(UsageError, match="unknown backend 'tensorrt'"):
        SlidingWindowSettings((8, 8, 8), backend="tensorrt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(UsageError, match="backend 'onnxruntime' needs the onnxruntime package") as err:
        make_forward("onnxruntime", torch.nn.Conv3d(1, 2, 1))
    assert "pip install 'segforge[onnx]'" in err.value.hint


# -- parity of the exported backends on real tiles ----------------------------------------------


def _hippocampus_net_and_image(hippocampus_msd):
    import SimpleITK as sitk

    from segforge import build_network
    from segforge.networks.builder import TopologyRequest
    from segforge.plugins import get_registries

    torch.manual_seed(0)
    builder = get_registries().network.get("generic_unet")
    params = builder.propose(TopologyRequest((40, 56, 40), (1.0, 1.0, 1.0), 1, 3))
    net = build_network("generic_unet", params.model_dump(), in_channels=1, num_classes=3, deep_supervision=False)
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(hippocampus_msd / "imagesTr" / "hippocampus_001.nii.gz")))
    image = image.astype(np.float32)
    return net.eval(), (image - image.mean()) / image.std()


@pytest.mark.parametrize("runtime", ["onnxruntime", pytest.param("openvino", marks=pytest.mark.slow)])
def test_exported_backend_matches_torch_on_a_real_image(runtime, hippocampus_msd, tmp_path, monkeypatch):
    if importlib.util.find_spec(runtime) is None:
        pytest.skip(f"{runtime} is not installed (pip install 'segforge[onnx]' / 'segforge[openvino]')")
    monkeypatch.setenv("SEGFORGE_CACHE", str(tmp_path))
    net, image = _hippocampus_net_and_image(hippocampus_msd)
    settings = dict(precision="fp32", reuse_constant_tiles=False)
    expected = SlidingWindowPredictor(net, SlidingWindowSettings((40, 56, 40), **settings)).predict_logits(image[None])
    predictor = SlidingWindowPredictor(net, SlidingWindowSettings((40, 56, 40), backend=runtime, **settings))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to torch would make this test meaningless
        out = predictor.predict_logits(image[None])
    assert predictor.forwards[0].impl.failed is None
    assert float((out.argmax(0) == expected.argmax(0)).float().mean()) >= 0.999
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=1e-3)
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1  # exported once, cached for the next run


def test_a_backend_that_disagrees_with_torch_is_not_used(tmp_path, monkeypatch):
    from segforge.inference.backends import exported

    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed (pip install 'segforge[onnx]')")
    monkeypatch.setattr(exported, "export_onnx", lambda net, x: tmp_path / "unused.onnx")
    monkeypatch.setattr(
        exported, "open_runtime", lambda runtime, path, threads: lambda x: -np.ones((len(x), 2, 4, 4, 4))
    )
    net = torch.nn.Conv3d(1, 2, 1)
    forward = make_forward("onnxruntime", net)
    x = torch.randn(1, 1, 4, 4, 4)
    with pytest.warns(exported.BackendFallbackWarning, match="backend onnxruntime not used .differs from torch"):
        out = forward(x)
    torch.testing.assert_close(out, net(x))
    assert forward.failed is not None
