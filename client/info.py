"""What a served model says about itself: its latent template and label mapping.

Both backends read the same keys from the contract: onnxruntime from the ONNX
file's metadata_props, Triton from config.pbtxt's `parameters` map. Either way
they arrive as a str -> str mapping, parsed here once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping

from infogan import defaults
from infogan.contract import (
    META_CATEGORY_PURITY,
    META_CATEGORY_TO_LABEL,
    META_LABEL_NAMES,
    META_METRICS,
    META_TEMPLATE,
    PURITY_WARNING,
    InfoganError,
    LatentTemplate,
)

EXPORT_HINT = "export one with `make export` (infogan export)"

# where the client looks by default (the CLI's --url and --repository, the API's arguments)
DEFAULT_URL, DEFAULT_REPOSITORY, DEFAULT_TIMEOUT_S = defaults.URL, defaults.REPOSITORY, defaults.TIMEOUT_S


@dataclass(frozen=True)
class ModelInfo:
    """The contract a model carries.

    category_to_label: the dataset label (index into label_names; the digit on MNIST)
    evaluation matched to each category, or None when the model carries no mapping.
    category_purity: for each category, the share of its generated images that
    evaluation's judge read as its label, or None when the model carries none.
    """

    source: str
    template: LatentTemplate
    category_to_label: tuple[int, ...] | None = None
    label_names: tuple[str, ...] | None = None
    metrics: dict = field(default_factory=dict)
    category_purity: tuple[float, ...] | None = None

    @classmethod
    def from_properties(cls, props: Mapping[str, str], source: str) -> "ModelInfo":
        if META_TEMPLATE not in props:
            raise InfoganError(f"model={source} carries no '{META_TEMPLATE}' metadata: {EXPORT_HINT}")
        template = LatentTemplate.from_json(props[META_TEMPLATE])
        # models exported before the key was renamed carry "infogan.category_to_digit"
        key = META_CATEGORY_TO_LABEL if META_CATEGORY_TO_LABEL in props else "infogan.category_to_digit"
        mapping = _json_list(props, key, source)
        names = _json_list(props, META_LABEL_NAMES, source)
        metrics = {}
        if props.get(META_METRICS):
            try:
                metrics = json.loads(props[META_METRICS])
            except json.JSONDecodeError:
                metrics = {}  # metrics are informative only; a bad blob must not block generation
        k = template.categories
        mapping = _per_category(mapping, int, k, "maps {n} categories to labels", source)
        # [] where the run was evaluated without the judge
        purity = _per_category(_json_list(props, META_CATEGORY_PURITY, source) or None, float, k,
                               "gives a purity for {n} categories", source)
        return cls(
            source=source,
            template=template,
            category_to_label=mapping,
            label_names=tuple(str(n) for n in names) if names is not None else None,
            metrics=metrics if isinstance(metrics, dict) else {},
            category_purity=purity,
        )

    def label_name(self, label: int) -> str:
        """The dataset's name of a label ("7" on MNIST, "Sneaker" on Fashion-MNIST)."""
        if self.label_names is not None and 0 <= label < len(self.label_names):
            return self.label_names[label]
        return str(label)

    def category_of_label(self, label: int) -> int:
        """The category whose images evaluation matched to `label`."""
        if self.category_to_label is None:
            raise InfoganError(
                f"label={label} needs a category->label mapping, which model={self.source} lacks: "
                "pass a category instead"
            )
        if label in self.category_to_label:
            return self.category_to_label.index(label)
        raise InfoganError(
            f"label={label} is invalid: the model's mapping covers labels {sorted(set(self.category_to_label))}"
        )

    def label_purity(self) -> dict[int, float] | None:
        """label -> purity of the category that stands for it (None without both mappings)."""
        if self.category_to_label is None or self.category_purity is None:
            return None
        return {d: p for d, p in sorted(zip(self.category_to_label, self.category_purity)) if d >= 0}

    def purity_warning(self, label: int) -> str | None:
        """One line when the category for `label` generates other labels too often."""
        purity = (self.label_purity() or {}).get(label)
        if purity is None or purity >= PURITY_WARNING:
            return None
        name = self.label_name(label)
        return (f"warning: only {100 * purity:.0f}% of the images generated for label {name} read as "
                f"{name} at evaluation (model {self.source}); expect other labels among them")

    def labels_of(self, categories) -> list[int] | None:
        if self.category_to_label is None:
            return None
        return [self.category_to_label[int(c)] for c in categories]


def _per_category(values: list | None, kind, k: int | None, what: str, source: str) -> tuple | None:
    """A per-category list from the metadata as a tuple, checked against the number of categories."""
    if values is None:
        return None
    if k is not None and len(values) != k:
        raise InfoganError(f"model={source} {what.format(n=len(values))} but it has {k} categories: "
                           f"re-export it ({EXPORT_HINT})")
    return tuple(kind(v) for v in values)


def _json_list(props: Mapping[str, str], key: str, source: str) -> list | None:
    text = props.get(key)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InfoganError(f"model={source} has malformed '{key}' metadata (not JSON): re-export it") from None
    if not isinstance(value, list):
        raise InfoganError(f"model={source} has malformed '{key}' metadata (not a JSON list): re-export it")
    return value
