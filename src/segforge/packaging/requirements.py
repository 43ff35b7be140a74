"""Which plugin distributions a trained model needs to predict, and whether they are installed.

Prediction uses the network (its builder must rebuild the exact layers the weights fit), the
image reader/writer and each channel's normalization. The network's distribution and version
are recorded in the checkpoint itself (``network.origin``); for the image IO and the
normalizations the distribution is the one registering them at export time, with the version
the fold's training manifest recorded for it when it did. Builtins (distribution ``segforge``)
need nothing beyond segforge.

A requirement is met when the distribution is installed in the same compatible release series
(:func:`segforge.inference.provenance.compatible_series`): the error names the exact
``pip install 'DIST>=X,<Y'`` line, before any weights are loaded.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from segforge.errors import ConfigError
from segforge.inference.provenance import compatible_series, pip_specifier
from segforge.packaging.package_format import Requirement


class MissingPluginError(ConfigError):
    """A model package needs a plugin distribution that is missing or of another release series."""


def _trained_versions(fold_manifest: dict[str, Any] | None) -> dict[str, str]:
    plugins = (fold_manifest or {}).get("plugins") or []
    return {
        str(p["dist"]): str(p["version"]) for p in plugins if isinstance(p, dict) and p.get("dist") and p.get("version")
    }


def model_requirements(
    network_spec: dict[str, Any], plans: Any, registries: Any, fold_manifest: dict[str, Any] | None = None
) -> list[Requirement]:
    """The non-builtin distributions behind the model's network, image IO and normalizations."""
    found: dict[str, Requirement] = {}

    def add(dist: str | None, version: str | None, component: str) -> None:
        if not dist or dist == "segforge" or not version:
            return
        req = found.setdefault(dist, Requirement(dist=dist, version=version, specifier=pip_specifier(version),
                                                 components=[]))  # fmt: skip
        if component not in req.components:
            req.components.append(component)

    origin = network_spec.get("origin") if isinstance(network_spec.get("origin"), dict) else {}
    add(network_spec.get("dist") or origin.get("dist"), network_spec.get("dist_version") or origin.get("version"),
        f"network:{network_spec.get('name')}")  # fmt: skip
    trained = _trained_versions(fold_manifest)
    used = [("image_io", plans.image_io)]
    used += [("normalization", n) for conf in plans.configurations.values() for n in conf.normalization]
    for kind, name in used:
        if name not in registries[kind]:
            continue  # not installed here either: the network/IO error at load time names it
        entry_origin = registries[kind].entry(name).origin
        add(entry_origin.dist, trained.get(str(entry_origin.dist), entry_origin.version), f"{kind}:{name}")
    return sorted(found.values(), key=lambda r: r.dist)


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_requirements(requirements: list[Requirement], what: str) -> None:
    """Raise :class:`MissingPluginError` naming the pip line for the first unmet requirement."""
    for req in requirements:
        have = installed_version(req.dist)
        if have is not None and compatible_series(have) == compatible_series(req.version):
            continue
        state = "is not installed" if have is None else f"{have} is installed (another release series)"
        components = ", ".join(req.components)
        raise MissingPluginError(
            f"{what} needs {req.dist} {req.version} ({components}), which {state}: {req.pip_line()}",
            hint=f"{req.pip_line()}, then run the command again",
        )
