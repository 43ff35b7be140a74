"""Reading a model package without trusting it: every refusal is one line naming the member.

Checks run on the zip's directory and bytes before anything is written or loaded:

1. member names: no absolute paths, no ``..``, no backslashes or drive letters, no links
   (a symlink member could point the unpacked model anywhere);
2. the package manifest must be present and valid, and name a plain model folder;
3. every member must be on the allow-list of :mod:`.package_format` (no code, no extra files);
4. the set of members must equal the manifest's file list and every sha256 must match
   (a member changed, added or removed after export);
5. no pickles: a raw pickle (by its protocol magic bytes) is refused wherever it appears;
   JSON members must parse as JSON; checkpoints must be torch zip files, and after unpacking
   they are loaded with ``weights_only=True`` (:func:`check_checkpoints`), which refuses any
   pickled object that is not a tensor or plain data — without executing it.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from segforge.errors import SegforgeError
from segforge.packaging.package_format import PACKAGE_MANIFEST, PackageManifest, member_allowed, model_dir_is_plain

_HINT = "use the package as exported by `segforge export-model`, or export it again"
#: PROTO opcode + protocol 2..5: how every pickle written since Python 2.3 starts
_PICKLE_MAGIC = tuple(bytes([0x80, p]) for p in range(2, 6))
_TORCH_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20
#: no member of a package compresses this well (checkpoints are stored, JSON deflates ~10-fold)
_MAX_RATIO = 200


class PackageError(SegforgeError):
    """A model package is foreign, damaged or tampered with."""

    exit_code = 2


@dataclass
class VerifiedPackage:
    """A package whose members passed the checks; ``sha256`` is the digest of the zip file itself."""

    path: Path
    manifest: PackageManifest
    sha256: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _refuse(path: Path, what: str) -> PackageError:
    return PackageError(f"{path}: refused, {what}", hint=_HINT)


def _check_name(path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or ":" in name or ".." in parts or not parts:
        raise _refuse(path, f"member '{name}' has an unsafe path (absolute, '..' or a drive)")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _refuse(path, f"member '{name}' is a symbolic link")


def _looks_like_nnunet_zip(archive: zipfile.ZipFile) -> bool:
    names = archive.namelist()
    return any(n.endswith("plans.json") for n in names) and any(n.endswith(".pth") for n in names)


def _read_manifest(path: Path, archive: zipfile.ZipFile) -> PackageManifest:
    from pydantic import ValidationError

    try:
        raw = archive.read(PACKAGE_MANIFEST)
    except KeyError:
        if _looks_like_nnunet_zip(archive):
            raise PackageError(
                f"{path}: refused, an nnU-Net model zip, not a segforge model package (no {PACKAGE_MANIFEST})",
                hint="unzip it and pass the folder holding plans.json and fold_N/ to -m (or segforge import-nnunet)",
            ) from None
        raise _refuse(path, f"not a segforge model package (no {PACKAGE_MANIFEST})") from None
    try:
        manifest = PackageManifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[0][:160]
        raise _refuse(path, f"{PACKAGE_MANIFEST} is not a valid package manifest ({reason})") from None
    if not model_dir_is_plain(manifest.model_dir):
        raise _refuse(path, f"the manifest names an unsafe model folder '{manifest.model_dir}'")
    return manifest


def _member_digest_and_head(archive: zipfile.ZipFile, name: str) -> tuple[str, bytes]:
    digest = hashlib.sha256()
    head = b""
    with archive.open(name) as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            if not head:
                head = chunk[:8]
            digest.update(chunk)
    return digest.hexdigest(), head


def _check_content(path: Path, archive: zipfile.ZipFile, name: str, head: bytes) -> None:
    if head.startswith(_PICKLE_MAGIC):
        raise _refuse(path, f"member '{name}' is a pickle")
    if name.endswith(".pt"):
        if not head.startswith(_TORCH_ZIP_MAGIC):
            raise _refuse(path, f"member '{name}' is not a torch zip checkpoint")
        return
    try:
        json.loads(archive.read(name))
    except ValueError:
        raise _refuse(path, f"member '{name}' is not JSON") from None


def verify_package(path: str | Path) -> VerifiedPackage:
    """Run checks 1-5a on the zip at ``path`` (checkpoints are loaded later, see :func:`check_checkpoints`)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise _refuse(path, "not a segforge model package (not a zip archive)")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        for info in infos:
            _check_name(path, info)
            if info.file_size > _MAX_RATIO * max(info.compress_size, 1) and info.file_size > _CHUNK:
                raise _refuse(path, f"member '{info.filename}' expands {info.file_size // max(info.compress_size, 1)}"
                              "-fold (a zip bomb?)")  # fmt: skip
        manifest = _read_manifest(path, archive)
        names = [i.filename for i in infos if not i.is_dir()]
        if len(set(names)) != len(names):
            raise _refuse(path, "a member name appears twice")
        for name in names:
            if not member_allowed(name, manifest.model_dir):
                raise _refuse(path, f"unexpected file '{name}' (not part of a model package)")
        listed = set(manifest.files)
        present = set(names) - {PACKAGE_MANIFEST}
        if listed - present:
            raise _refuse(path, f"member '{sorted(listed - present)[0]}' listed in the manifest is missing")
        if present - listed:
            raise _refuse(path, f"member '{sorted(present - listed)[0]}' is not listed in the manifest")
        for name in sorted(present):
            digest, head = _member_digest_and_head(archive, name)
            if digest != manifest.files[name]:
                raise _refuse(path, f"member '{name}' does not match its sha256 in the manifest (changed after export)")
            _check_content(path, archive, name, head)
    return VerifiedPackage(path=path, manifest=manifest, sha256=file_sha256(path))


def extract_to(package: VerifiedPackage, dest: Path) -> None:
    """Write the verified members under ``dest`` (names were checked: they stay inside it)."""
    with zipfile.ZipFile(package.path) as archive:
        for name in package.manifest.files:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as src, open(target, "wb") as out:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    out.write(chunk)


def check_checkpoints(package: VerifiedPackage, root: Path) -> None:
    """Load each unpacked checkpoint with ``weights_only=True``: a planted pickle is refused, not run."""
    from segforge.artifacts.checkpoint import CheckpointError, load_checkpoint

    for name in sorted(n for n in package.manifest.files if n.endswith(".pt")):
        try:
            load_checkpoint(root / name)
        except CheckpointError as exc:
            if "UnpicklingError" in exc.message:
                reason = "holds pickled objects other than tensors and plain data (refused, not run)"
            else:
                reason = exc.message.split(": ", 1)[-1][:200]
            raise _refuse(package.path, f"member '{name}' {reason}") from None
