"""nnU-Net models the builtin U-Nets cannot express run with nnU-Net's own network class (``nnunet_dna``).

Where dynamic_network_architectures is installed (the nnU-Net venv: ``nox -s peers``), the real
nnU-Net-trained fixture is imported through the fallback and must give nnU-Net's stored
predictions (same criteria as test_nnunet_predict); a genuinely unmappable variant of it
(``nonlin_first``) converts and predicts. Without the package the refusal names the pip line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from segforge_nnunet_fixture import PLAIN
from test_nnunet_predict import _require, assert_matches, predict

from segforge.errors import ConfigError
from segforge.interop.nnunet import dna_network, load_nnunet_checkpoint, model_directory, to_model_directory
from segforge.interop.nnunet.model_directory import IMPORT_RECORD


def nonlin_first_model(tmp_path: Path, with_weights: bool = False) -> Path:
    """The fixture's model with ``nonlin_first`` set, an order segforge's U-Nets do not build.

    ``with_weights``: the checkpoint's weights replaced by those of nnU-Net's class built with that
    order (its layer indices differ from the fixture's), saved as nnU-Net saves them.
    """
    _require(PLAIN)
    model = tmp_path / "nonlin_first_model"
    shutil.copytree(PLAIN / "model", model)
    plans = json.loads((model / "plans.json").read_text())
    architecture = plans["configurations"]["3d_fullres"]["architecture"]
    architecture["arch_kwargs"]["nonlin_first"] = True
    (model / "plans.json").write_text(json.dumps(plans))
    if with_weights:
        import torch

        params = {"network_class_name": architecture["network_class_name"], "arch_kwargs": architecture["arch_kwargs"],
                  "requires_import": architecture["_kw_requires_import"]}  # fmt: skip
        torch.manual_seed(0)
        network = dna_network.NnunetDnaBuilder().build(dna_network.DnaParams(**params), 1, 3, deep_supervision=True)
        checkpoint = model / "fold_0" / "checkpoint_final.pth"
        payload = load_nnunet_checkpoint(checkpoint)
        payload["network_weights"] = network.state_dict()
        torch.save(payload, checkpoint)
    return model


def test_without_the_package_the_refusal_names_the_pip_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(dna_network, "available", lambda: False)
    with pytest.raises(ConfigError) as err:
        to_model_directory(nonlin_first_model(tmp_path), tmp_path / "out")
    assert "arch_kwargs.nonlin_first is set" in err.value.message
    assert "pip install dynamic-network-architectures" in (err.value.hint or "")
    assert not (tmp_path / "out").exists()


def test_layer_paths_outside_torch_nn_are_refused_before_any_import():
    with pytest.raises(ValueError, match="is not a torch.nn layer"):
        dna_network.DnaParams(arch_kwargs={"strides": [1], "kernel_sizes": [3], "conv_op": "os.system"},
                              requires_import=["conv_op"])  # fmt: skip
    with pytest.raises(ValueError, match="not a class of dynamic_network_architectures"):
        dna_network.DnaParams(network_class_name="subprocess.Popen", arch_kwargs={"strides": [1], "kernel_sizes": [3]})
    with pytest.raises(ConfigError, match="is not a class of torch.nn"):
        dna_network.resolve("builtins.eval", dna_network.LAYER_PACKAGE, "arch_kwargs.nonlin")


needs_dna = pytest.mark.skipif(not dna_network.available(), reason="dynamic_network_architectures is not installed")


@needs_dna
def test_fixture_through_nnunets_class_matches_nnunets_predictions(
    run_main, reference_inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _require(PLAIN)

    def unsupported(architecture, where):
        raise ConfigError(f"{where}: treated as unsupported by this test")

    monkeypatch.setattr(model_directory, "network_spec", unsupported)
    predict(run_main, PLAIN / "model", reference_inputs, tmp_path / "out")
    assert_matches(tmp_path / "out", PLAIN / "reference")


@needs_dna
def test_unmappable_model_converts_with_its_requirement_and_predicts(run_main, reference_inputs: Path, tmp_path: Path):
    import torch

    from segforge.inference.model_loading import build_network, load_model

    model = nonlin_first_model(tmp_path, with_weights=True)
    run_dir = to_model_directory(model, tmp_path / "converted", folds=["0"])
    assert json.loads((tmp_path / "converted" / IMPORT_RECORD).read_text())["network"] == "nnunet_dna"
    loaded = load_model(next(run_dir.glob("fold_0/checkpoint_*.pt")))
    payload = {"network": loaded.network_spec}
    assert payload["network"]["dist"] == dna_network.DIST and payload["network"]["dist_version"]
    ours = build_network(loaded)
    theirs = dna_network.NnunetDnaBuilder().build(payload["network"]["params"], 1, 3, deep_supervision=False)
    theirs.load_state_dict(load_nnunet_checkpoint(model / "fold_0" / "checkpoint_final.pth")["network_weights"])
    x = torch.randn(1, 1, 40, 56, 40)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs.eval()(x))
    predict(run_main, model, reference_inputs, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz")) == [
        f"{p.name.removesuffix('_0000.nii.gz')}.nii.gz" for p in sorted(reference_inputs.iterdir())
    ]
