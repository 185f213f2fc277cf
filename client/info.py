"""What a served model says about itself: its latent template and label mapping.

Both backends read the same keys from the contract: onnxruntime from the ONNX
file's metadata_props, Triton from config.pbtxt's `parameters` map. Either way
they arrive as a str -> str mapping, parsed here once.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

from infogan import defaults
from infogan.contract import (
    ENCODER_MODEL,
    GENERATOR_MODEL,
    META_CATEGORY_PURITY,
    META_CATEGORY_TO_LABEL,
    META_CHECKPOINT_SHA256,
    META_LABEL_NAMES,
    META_METRICS,
    META_TEMPLATE,
    MODEL_FILE,
    PURITY_WARNING,
    InfoganError,
    LatentTemplate,
    model_versions,
)

EXPORT_HINT = "export one with `make export` (infogan export)"

# where the client looks by default (the CLI's --url and --repository, the API's arguments)
DEFAULT_URL, DEFAULT_REPOSITORY, DEFAULT_TIMEOUT_S = defaults.URL, defaults.REPOSITORY, defaults.TIMEOUT_S
DEFAULT_DEVICE = defaults.DEVICE  # where --backend onnx runs


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


# ---------------------------------------------------------------- the generator/encoder pair


class MixedPair(UserWarning):
    """A generator and the encoder of its precision were exported from different checkpoints."""


def _varint(f: BinaryIO) -> int | None:
    value = shift = 0
    while byte := f.read(1):
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
    return None  # end of the message


def _length_fields(f: BinaryIO, keep: set[int]) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of each length-delimited protobuf field numbered in `keep`; the rest is skipped unread."""
    while (tag := _varint(f)) is not None:
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _varint(f)
        elif wire in (1, 5):  # fixed 64 / 32 bits
            f.seek(8 if wire == 1 else 4, io.SEEK_CUR)
        elif wire == 2:
            size = _varint(f) or 0
            if number in keep:
                yield number, f.read(size)
            else:
                f.seek(size, io.SEEK_CUR)
        else:
            raise ValueError(f"protobuf wire type {wire}")


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file (ModelProto field 14, entries of key 1 and value 2),
    read from the protobuf wire format: the runtime has no `onnx` package, and an onnxruntime
    session would build the whole graph to hand back a few strings. The graph is skipped unread."""
    props = {}
    try:
        with open(path, "rb") as f:
            for _, entry in _length_fields(f, {14}):
                kv = dict(_length_fields(io.BytesIO(entry), {1, 2}))
                props[kv.get(1, b"").decode("utf-8", "replace")] = kv.get(2, b"").decode("utf-8", "replace")
    except ValueError:
        raise InfoganError(f"model={path} is not an ONNX file: {EXPORT_HINT}") from None
    return props


def paired_model(model: str) -> str | None:
    """infogan_generator_int8 -> infogan_encoder_int8 and back; None for a model outside the pair."""
    for own, other in ((GENERATOR_MODEL, ENCODER_MODEL), (ENCODER_MODEL, GENERATOR_MODEL)):
        if model.startswith(own):
            return other + model[len(own):]
    return None


def checkpoint_of(repository: str | Path, model: str, version: int) -> str | None:
    """The checkpoint hash a model version's own model.onnx carries; None without the file or the key.
    Not config.pbtxt's: publishing renames the version folder into place before it replaces the
    config, so for a moment (or, after a killed export, until the next one) the config still
    describes the previous version."""
    path = Path(repository) / model / str(version) / MODEL_FILE
    return (onnx_metadata(path).get(META_CHECKPOINT_SHA256) or None) if path.is_file() else None


def newest_versions(repository: str | Path) -> dict[str, int]:
    """model -> its newest version holding a model.onnx, for every model of the repository."""
    repo = Path(repository)
    newest = {}
    for model_dir in sorted(repo.iterdir()) if repo.is_dir() else []:
        versions = [v for v in model_versions(model_dir) if (model_dir / str(v) / MODEL_FILE).is_file()]
        if versions:
            newest[model_dir.name] = versions[-1]
    return newest


def mixed_pair(checkpoints: Mapping[str, tuple[int | str, str | None]]) -> str | None:
    """One line naming the first generator and encoder of one precision whose checkpoints differ;
    None when every pair matches. checkpoints: model -> (version, checkpoint hash or None, unknown)."""
    for gen in sorted(n for n in checkpoints if n.startswith(GENERATOR_MODEL)):
        enc = paired_model(gen)
        if enc not in checkpoints:
            continue
        (g_version, g_sha), (e_version, e_sha) = checkpoints[gen], checkpoints[enc]
        if g_sha and e_sha and g_sha != e_sha:
            return (f"{gen} version {g_version} and {enc} version {e_version} come from different checkpoints "
                    f"({g_sha[:12]} and {e_sha[:12]}; an export stopped half way?): run infogan export again "
                    "to publish both")
    return None


def check_pair(repository: str | Path, versions: Mapping[str, int] | None = None) -> str | None:
    """mixed_pair() over the model files themselves: each version's checkpoint hash read from
    its own model.onnx. versions: model -> version to compare (a server's ready ones, or what a
    client opened); by default every model's newest version."""
    versions = newest_versions(repository) if versions is None else versions
    return mixed_pair({m: (v, checkpoint_of(repository, m, v)) for m, v in versions.items()})


def warn_mixed_pair(repository: str | Path, model_file: Path) -> None:
    """Warn in one line (MixedPair) when <repository>/<model>/<version>/model.onnx, just opened,
    and the newest version of its pair come from different checkpoints. A warning, not a refusal:
    each model carries its own template and label mapping, so either one alone still answers
    correctly; only an app that feeds one's output to the other mixes two trainings, and the
    state is the documented window of an export (or what a killed one leaves until the next)."""
    model, version = model_file.parent.parent.name, int(model_file.parent.name)
    other = paired_model(model)
    newest = newest_versions(repository)
    if other in newest:
        line = check_pair(repository, {model: version, other: newest[other]})
        if line:
            warnings.warn(line, MixedPair, stacklevel=3)
