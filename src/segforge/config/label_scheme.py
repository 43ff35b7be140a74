"""What a network's output channels mean: softmax over labels, or one sigmoid per region.

nnU-Net v2 decides this from dataset.json (its ``LabelManager``); segforge records the same
decision in the plans (``Plans.regions`` / ``regions_class_order``, ``labels["ignore"]``) so
training, prediction and the checkpoint agree without the raw dataset.json:

- **ordinary** datasets: one softmax channel per label value, background included, the
  ``ignore`` label excluded (the network never predicts it);
- **region-based** datasets (dataset.json labels given as lists, BraTS style): one sigmoid
  channel per region, no background channel; a voxel belongs to a region when its label is
  one of the region's values; prediction writes ``regions_class_order[i]`` where region ``i``
  is on, later regions overwriting earlier ones.

The ``ignore`` label marks unannotated voxels: they count nowhere (loss, pseudo-Dice, metrics).
No torch here: planning and the CLI use this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segforge.config.dataset import IGNORE_LABEL_NAME
from segforge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from segforge.config.dataset import DatasetJson
    from segforge.config.plans import Plans

REGIONS_HINT = (
    'give regions as label lists, e.g. "whole tumor": [1, 2, 3], and "regions_class_order": [1, 2, 3] '
    "(the label written for each region, in the order of the regions)"
)


@dataclass(frozen=True)
class LabelScheme:
    """The label values, the optional regions and ignore label of a dataset (see the module docstring)."""

    #: integer labels the network predicts with softmax, background included, ignore excluded
    label_values: tuple[int, ...]
    ignore_label: int | None = None
    #: label sets, one per sigmoid output channel; None for softmax training
    regions: tuple[tuple[int, ...], ...] | None = None
    #: the label value written for each region (same length as ``regions``)
    regions_class_order: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.regions is None:
            return
        order = self.regions_class_order
        if order is None or len(order) != len(self.regions):
            raise ConfigError(
                f"{len(self.regions)} region(s) but regions_class_order is {list(order) if order else 'missing'}",
                hint=REGIONS_HINT,
            )
        if self.ignore_label is not None and any(self.ignore_label in r for r in self.regions):
            raise ConfigError(
                f"the ignore label {self.ignore_label} is part of a region",
                hint="regions list annotated labels only; voxels labelled ignore are left out of every region",
            )

    # -- derived ------------------------------------------------------------------------------
    @property
    def has_regions(self) -> bool:
        return self.regions is not None

    @property
    def has_ignore(self) -> bool:
        return self.ignore_label is not None

    @property
    def num_outputs(self) -> int:
        """Network output channels: one per region, or one per label (background included)."""
        return len(self.regions) if self.regions is not None else len(self.label_values)

    @property
    def num_scored(self) -> int:
        """Entries of the pseudo-Dice: every region, or every foreground label."""
        return len(self.regions) if self.regions is not None else len(self.label_values) - 1

    def output_labels(self) -> list[int]:
        """The label value each output channel stands for (softmax: its label; regions: its class order)."""
        if self.regions_class_order is not None:
            return list(self.regions_class_order)
        return list(self.label_values)

    def foreground_values(self) -> list[int]:
        """Every annotated label value other than background, ascending (for foreground sampling)."""
        values = set(self.label_values)
        for region in self.regions or ():
            values.update(region)
        return sorted(v for v in values if v != 0 and v != self.ignore_label)

    def evaluation_classes(self) -> dict[int, tuple[int, ...]]:
        """What ``segforge evaluate`` scores: key -> label values forming its mask.

        Regions are keyed by the label they are exported as (``regions_class_order``), as the
        reference label maps contain the member labels and a prediction contains the order labels.
        """
        if self.regions is not None and self.regions_class_order is not None:
            return {int(k): tuple(r) for k, r in zip(self.regions_class_order, self.regions, strict=True)}
        return {v: (v,) for v in self.label_values if v != 0}

    def plans_fields(self) -> dict[str, Any]:
        """The Plans fields that record this scheme (``labels`` itself comes from the fingerprint)."""
        if self.regions is None:
            return {"regions": None, "regions_class_order": None}
        return {"regions": [list(r) for r in self.regions], "regions_class_order": list(self.regions_class_order or ())}

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_labels(
        cls,
        labels: Mapping[str, int],
        regions: Sequence[Sequence[int]] | None = None,
        regions_class_order: Sequence[int] | None = None,
    ) -> LabelScheme:
        """From a name -> value mapping (plans' ``labels``) plus the optional regions."""
        ignore = labels.get(IGNORE_LABEL_NAME)
        values = tuple(sorted({int(v) for k, v in labels.items() if k != IGNORE_LABEL_NAME}))
        if 0 not in values:
            values = (0, *values)
        return cls(
            label_values=values,
            ignore_label=None if ignore is None else int(ignore),
            regions=None if not regions else tuple(tuple(int(v) for v in r) for r in regions),
            regions_class_order=None if regions_class_order is None else tuple(int(v) for v in regions_class_order),
        )

    @classmethod
    def from_plans(cls, plans: Plans) -> LabelScheme:
        """The plans' scheme; plans with neither a foreground label nor regions are an error (nothing to train)."""
        scheme = cls.from_labels(plans.labels, plans.regions, plans.regions_class_order)
        if scheme.num_scored < 1:
            raise ConfigError(
                f"plans '{plans.plans_name}' of {plans.dataset_name} have no foreground label and no regions",
                hint="for a region-based dataset.json re-run `segforge plan-and-preprocess --overwrite-plans` "
                "(plans made before regions were supported lack them)",
            )
        return scheme

    @classmethod
    def from_dataset_json(cls, dataset_json: DatasetJson) -> LabelScheme:
        """nnU-Net v2's rule: with any list-valued label, every non-background, non-ignore entry is a region
        (an integer entry is a one-label region), in the order of dataset.json."""
        labels = dataset_json.label_values()
        if not dataset_json.has_regions:
            return cls.from_labels(labels)
        regions = [
            tuple(v) if isinstance(v, list) else (int(v),)
            for name, v in dataset_json.labels.items()
            if name not in ("background", IGNORE_LABEL_NAME) and v != 0
        ]
        order = dataset_json.regions_class_order
        if order is None:
            raise ConfigError(
                f"dataset '{dataset_json.name}' has region labels but no regions_class_order", hint=REGIONS_HINT
            )
        return cls.from_labels(labels, regions, order)
