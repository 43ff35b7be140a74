"""A tampered or foreign package is refused in one line, before anything is unpacked or run."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from segforge_tiny_task import DATASET, TASK  # on sys.path through conftest.py

RUN = f"{DATASET}/3d_fullres/default__generic_unet__segforgePlans"
MANIFEST = "segforge-package.json"


@pytest.fixture(scope="module")
def package_bytes(trained_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One exported package (its bytes), shared by every refusal below."""
    import os
    from unittest import mock

    from segforge import plugins
    from segforge.cli.app import main

    out = tmp_path_factory.mktemp("pkg") / "tiny.zip"
    env = {"SEGFORGE_RAW": str(trained_tiny / "raw"), "SEGFORGE_PREPROCESSED": str(trained_tiny / "pre"),
           "SEGFORGE_RESULTS": str(trained_tiny / "results")}  # fmt: skip
    with mock.patch.dict(os.environ, env), pytest.raises(SystemExit) as done:
        plugins.reset_manager()
        main(["export-model", "--task", TASK, "-f", "0", "-o", str(out)])
    plugins.reset_manager()
    assert done.value.code in (0, None)
    return out.read_bytes()


def rebuild(original: bytes, path: Path, edit: Callable[[dict[str, bytes]], None], *, fix_sums: bool = True,
            extra: Callable[[zipfile.ZipFile], None] | None = None) -> Path:  # fmt: skip
    """A copy of the package with ``edit`` applied to its members (checksums recomputed unless told not to)."""
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(members.pop(MANIFEST))
    edit(members)
    if fix_sums:
        manifest["files"] = {n: hashlib.sha256(b).hexdigest() for n, b in members.items()}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MANIFEST, json.dumps(manifest))
        for name, data in members.items():
            archive.writestr(name, data)
        if extra is not None:
            extra(archive)
    return path


def _symlink(archive: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo(f"{RUN}/dataset2.json")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive.writestr(info, "/etc/passwd")


class Evil:
    """Pickled as a call to print: loading it without weights_only would run that call."""

    def __reduce__(self):
        return (print, ("pickle payload executed",))


def _pickled_checkpoint(members: dict[str, bytes]) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({"network_weights": {}, "payload": Evil()}, buffer)
    members[f"{RUN}/fold_0/checkpoint_final.pt"] = buffer.getvalue()


def _raw_pickle(members: dict[str, bytes]) -> None:
    import pickle  # noqa: S403 - writing the hostile member the reader must refuse

    members[f"{RUN}/dataset.json"] = pickle.dumps({"a": 1}, protocol=4)


CASES = {
    "traversal": (lambda m: m.__setitem__("../evil.json", b"{}"), True, None, "unsafe path"),
    "absolute": (lambda m: m.__setitem__("/tmp/evil.json", b"{}"), True, None, "unsafe path"),
    "symlink": (lambda m: None, False, _symlink, "is a symbolic link"),
    "unexpected": (lambda m: m.__setitem__(f"{RUN}/fold_0/hook.py", b"import os"), True, None, "unexpected file"),
    "raw_pickle": (_raw_pickle, True, None, f"member '{RUN}/dataset.json' is a pickle"),
    "pickled_checkpoint": (_pickled_checkpoint, True, None, "holds pickled objects other than tensors"),
    "changed": (
        lambda m: m.__setitem__(f"{RUN}/plans.json", m[f"{RUN}/plans.json"] + b" "),
        False,
        None,
        "does not match its sha256",
    ),  # fmt: skip
    "removed": (lambda m: m.pop(f"{RUN}/plans.json"), False, None, "listed in the manifest is missing"),
    "not_json": (lambda m: m.__setitem__(f"{RUN}/postprocessing.json", b"rules: x"), True, None, "is not JSON"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampered_package_is_refused_in_one_line(case, package_bytes, run_main, tiny_env, tmp_path, monkeypatch):
    edit, fix_sums, extra, message = CASES[case]
    bad = rebuild(package_bytes, tmp_path / "bad.zip", edit, fix_sums=fix_sums, extra=extra)
    images = tiny_env / "raw" / DATASET / "imagesTr"
    code, out, err = run_main(["predict", "-m", str(bad), "-i", str(images), "-o", str(tmp_path / "out")])
    assert code == 2, err
    assert message in err and "refused" in err
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if ln.startswith("error")]) == 1
    assert not (tmp_path / "out").exists()
    assert not any((tmp_path / "cache").rglob("*.pt"))  # nothing left unpacked
    assert "pickle payload executed" not in out + err  # print would have written to the captured stdout
    monkeypatch.setenv("SEGFORGE_RESULTS", str(tmp_path / "elsewhere"))
    code, _, err = run_main(["install-model", str(bad)])
    assert code == 2 and message in err
    assert not any((tmp_path / "elsewhere").rglob("*.pt"))


def test_foreign_zip_and_non_zip_are_refused(run_main, tiny_env, tmp_path):
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("model.pt", b"x")
    code, _, err = run_main(["install-model", str(foreign)])
    assert code == 2 and "not a segforge model package (no segforge-package.json)" in err
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    code, _, err = run_main(["install-model", str(tmp_path / "plain.zip")])
    assert code == 2 and "not a zip archive" in err


def test_missing_plugin_names_the_pip_line_before_unpacking(package_bytes, run_main, tiny_env, tmp_path):
    with zipfile.ZipFile(io.BytesIO(package_bytes)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(members[MANIFEST])
    manifest["requirements"] = [{"dist": "segforge-nonexistent-net", "version": "1.4.2", "specifier": ">=1.0,<2",
                                 "components": ["network:nonexistent"]}]  # fmt: skip
    members[MANIFEST] = json.dumps(manifest).encode()
    needy = tmp_path / "needy.zip"
    with zipfile.ZipFile(needy, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    images = tiny_env / "raw" / DATASET / "imagesTr"
    code, _, err = run_main(["predict", "-m", str(needy), "-i", str(images), "-o", str(tmp_path / "out")])
    assert code == 2
    assert "needs segforge-nonexistent-net 1.4.2 (network:nonexistent), which is not installed" in err
    assert "pip install 'segforge-nonexistent-net>=1.0,<2'" in err
    assert not (tmp_path / "cache").exists()


def test_zip_bomb_member_is_refused_before_reading_it(package_bytes, run_main, tiny_env, tmp_path):
    def bomb(archive: zipfile.ZipFile) -> None:
        archive.writestr(f"{RUN}/inference_instructions.json", b" " * (4 << 20), zipfile.ZIP_DEFLATED)

    bad = rebuild(package_bytes, tmp_path / "bomb.zip", lambda m: None, extra=bomb)
    code, _, err = run_main(["install-model", str(bad)])
    assert code == 2 and f"member '{RUN}/inference_instructions.json' expands" in err and "zip bomb" in err


def test_an_nnunet_zip_is_named_with_what_to_do(run_main, tiny_env, tmp_path):
    nnunet = tmp_path / "nnunet_export.zip"
    with zipfile.ZipFile(nnunet, "w") as archive:
        for name in ("plans.json", "dataset.json", "fold_0/checkpoint_final.pth"):
            archive.writestr(f"Dataset004_Hippocampus/nnUNetTrainer__nnUNetPlans__3d_fullres/{name}", b"{}")
    code, _, err = run_main(["predict", "-m", str(nnunet), "-i", str(tmp_path), "-o", str(tmp_path / "out")])
    assert code == 2 and "an nnU-Net model zip, not a segforge model package" in err
    assert "unzip it and pass the folder" in err
