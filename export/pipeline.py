"""export_run: a training run directory -> checked ONNX models published into a Triton repository.

Everything that can fail (reading the run, building the graphs, onnx's checker,
parity, the variants) happens before the repository is touched; publishing is
then a handful of renames under a lock (export.repository).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from infogan import defaults
from infogan.contract import (
    ENCODER_MODEL,
    GENERATOR_MODEL,
    GPU_MODEL_FILE,
    META_CATEGORY_PURITY,
    META_CATEGORY_TO_LABEL,
    META_CHECKPOINT_SHA256,
    META_LABEL_NAMES,
    META_METRICS,
    META_PRECISION,
    META_TEMPLATE,
    META_VERSION,
    InfoganError,
    LatentTemplate,
    encoder_inputs,
    encoder_outputs,
    generator_inputs,
    generator_outputs,
)
from infogan.files import from_uint8
from infogan.export import onnx_export, parity, quantize
from infogan.export.upconv import rewrite_upconvs
from infogan.export.repository import (PRECISIONS, DEFAULT_KEEP_VERSIONS, StagedModel, check_keep_versions, model_config,
                                       model_name, publish)

HEADLINE_METRICS = ("accuracy", "dataset", "n_images", "labels_with_own_category", "category_share_max",
                    "images_seen", "step")


@dataclass
class ExportResult:
    version: int
    repository: Path
    models: list[str]
    parity: list[parity.ParityReport]
    quality: dict[str, dict] = field(default_factory=dict)  # precision -> quality dict


def _package_version() -> str:
    try:
        return importlib_metadata.version("infogan")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def read_evaluation(run_dir: Path, ckpt: dict, template: LatentTemplate) -> dict:
    """evaluation.json beside the checkpoint (or the one the checkpoint carries), checked against the template."""
    path = run_dir / defaults.EVALUATION_FILE
    if path.is_file():
        try:
            ev = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InfoganError(f"evaluation={path} is invalid: not JSON ({e}); re-evaluate the run") from None
    elif isinstance(ckpt.get("evaluation"), dict):
        ev = ckpt["evaluation"]
    else:
        raise InfoganError(f"evaluation={path} does not exist: evaluate the run first (its category-to-label mapping is part of the export)")
    mapping, names = ev.get("category_to_label"), ev.get("label_names")
    k = template.categories
    ok = (
        isinstance(mapping, list) and isinstance(names, list) and len(mapping) == k
        and all(isinstance(i, int) and -1 <= i < len(names) for i in mapping)
    )
    if not ok:
        raise InfoganError(
            f"evaluation={path} is invalid: category_to_label must list a label index (< {len(names or [])}, "
            f"-1 for none) for each of the {k} categories"
        )
    return ev


def _load_run(run_dir: Path):
    # torch enters here, not at import: `infogan --help` stays quick
    from infogan.training.checkpoint import build_models, checkpoint_template, file_sha256, load_checkpoint

    if not run_dir.is_dir():
        raise InfoganError(f"run={run_dir} does not exist: train first (make train) or pass --run runs/<name>")
    path = run_dir / defaults.CHECKPOINT_FILE
    ckpt = load_checkpoint(path)
    template = checkpoint_template(ckpt)
    g, d = build_models(ckpt)
    return ckpt, template, g.eval(), d.eval(), file_sha256(path)


def _test_set(ckpt: dict, ev: dict, data_dir: Path | None) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """(the labelled test images as float32 [N, 1, 28, 28] in [0, 1], "") or (None, why they cannot be read)."""
    from infogan.training.data import UNRECORDED_DATASET, load_split

    data_dir = data_dir or Path(ckpt.get("config", {}).get("data_dir", defaults.DATA_DIR))
    try:
        images, labels = load_split(data_dir, ev.get("dataset", UNRECORDED_DATASET), "test")
    except FileNotFoundError as e:
        return None, f"{e.filename} is not on disk"
    except (InfoganError, OSError) as e:  # present but unreadable: say why
        return None, str(e)
    return (from_uint8(images), labels), ""


def export_run(
    run_dir: str | Path,
    repository: str | Path,
    precisions: tuple[str, ...] = ("fp32",),
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
    tensorrt: bool = False,
    force: bool = False,
    data_dir: str | Path | None = None,
    on_step: Callable[[str], None] = lambda _: None,
    log: Callable[[str], None] = lambda _: None,
) -> ExportResult:
    """Export the run's generator and encoder in each precision and publish them as one new version."""
    precisions = tuple(dict.fromkeys(precisions))  # a precision given twice is published once
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise InfoganError(f"precision={','.join(bad) or '(none)'} is invalid: choose from {', '.join(PRECISIONS)}")
    check_keep_versions(keep_versions)  # before the minutes of export, not at publish
    run_dir, repository = Path(run_dir), Path(repository)
    if repository.exists() and not repository.is_dir():
        raise InfoganError(f"repository={repository} is invalid: it is a file; give a folder (created if missing)")

    on_step("reading the run")
    ckpt, template, g, d, sha = _load_run(run_dir)
    ev = read_evaluation(run_dir, ckpt, template)

    on_step("writing ONNX graphs")
    # the generator twice: model.onnx with phase convolutions (the CPU's fastest) and the
    # exporter's plain graph as model.gpu.onnx (CUDA's fastest); the encoder is one graph
    gpu_graph = onnx_export.plain_generator_onnx(g, template)
    fp32 = {GENERATOR_MODEL: rewrite_upconvs(gpu_graph), ENCODER_MODEL: onnx_export.encoder_onnx(d, template)}
    on_step("checking parity with PyTorch")
    raw = {k: m.SerializeToString() for k, m in fp32.items()}
    reports = [parity.generator_parity(raw[GENERATOR_MODEL], g, template),
               parity.encoder_parity(raw[ENCODER_MODEL], d, g, template),
               parity.generator_parity(gpu_graph.SerializeToString(), g, template)]
    for name, rep in zip((*fp32, f"{GENERATOR_MODEL} ({GPU_MODEL_FILE})"), reports):
        parity.require(rep, name)
        log(f"parity {name}: max |onnxruntime - PyTorch| = {rep.worst:.2g} over batches {parity.PARITY_BATCHES}")
    gpu_graphs = {"fp32": gpu_graph}

    variants, quality = {"fp32": fp32}, {}
    lossy = [p for p in precisions if p != "fp32"]
    test_set, why = _test_set(ckpt, ev, Path(data_dir) if data_dir else None) if lossy else (None, "")
    if lossy and test_set is None:
        log(f"the test set cannot be used ({why}): variants are measured on generated images only")
    for precision in lossy:
        on_step(f"making and measuring the {precision} variant")
        variants[precision] = {k: quantize.make_variant(m, precision) for k, m in fp32.items()}
        if precision == "fp16":  # int8 is the CPU's variant: its quantized ops are CPU kernels
            gpu_graphs[precision] = quantize.make_variant(gpu_graph, precision)
        quality[precision] = quantize.quality(
            template, (raw[GENERATOR_MODEL], raw[ENCODER_MODEL]),
            tuple(variants[precision][k].SerializeToString() for k in (GENERATOR_MODEL, ENCODER_MODEL)),
            ev["category_to_label"], test_set,
        )
        log(quantize.describe(precision, quality[precision]))

    on_step("publishing")
    metrics = {k: ev[k] for k in HEADLINE_METRICS if k in ev}
    metrics.update(parity_max_abs_diff=max(r.worst for r in reports), run=run_dir.resolve().name)
    fidelity = (ev.get("generation") or {}).get("fidelity")
    if fidelity:  # how far generated digits lie from real ones, beside Q's accuracy
        metrics["fidelity_ratio"] = round(fidelity["ratio"], 3)
    staged = _stage(template, {p: variants[p] for p in precisions}, _metadata(template, ev, sha), metrics, quality, tensorrt,
                    gpu_graphs)
    family = tuple(model_name(b, p) for b in (GENERATOR_MODEL, ENCODER_MODEL) for p in PRECISIONS)
    version = publish(repository, staged, keep_versions=keep_versions, force=force, family=family)
    log(f"published version {version} of {', '.join(m.name for m in staged)} into {repository}")
    return ExportResult(version, repository, [m.name for m in staged], reports, quality)


def _metadata(template: LatentTemplate, ev: dict, sha: str) -> dict[str, str]:
    """The contract entries every exported model carries, whatever its precision."""
    return {
        META_TEMPLATE: template.to_json(),
        META_CATEGORY_TO_LABEL: json.dumps(ev["category_to_label"]),
        META_LABEL_NAMES: json.dumps(ev["label_names"]),
        # the judge's purity per category; [] for a run evaluated without the judge
        META_CATEGORY_PURITY: json.dumps([round(p, 4) for p in (ev.get("generation") or {}).get("purity_per_category", [])]),
        META_CHECKPOINT_SHA256: sha,
        META_VERSION: _package_version(),
    }


def _describe(specs) -> str:
    def one(s) -> str:
        rng = f" in [{s.low:g}, {s.high:g}]" if s.low is not None and s.high is not None else ""
        return f"{s.name} {s.dtype} [N, {', '.join(map(str, s.shape))}]{rng}"

    return ", ".join(one(s) for s in specs)


def _stage(template: LatentTemplate, variants: dict[str, dict[str, onnx.ModelProto]], common: dict[str, str],
           metrics: dict, quality: dict[str, dict], tensorrt: bool,
           gpu_graphs: dict[str, onnx.ModelProto] | None = None) -> list[StagedModel]:
    """Metadata into each ONNX file, the same entries into its config's parameters; a
    generator's GPU graph (by precision) beside its model.onnx, with the same metadata."""
    gpu_graphs = gpu_graphs or {}
    specs = {GENERATOR_MODEL: (generator_inputs(template), generator_outputs(template)),
             ENCODER_MODEL: (encoder_inputs(template), encoder_outputs(template))}
    staged = []
    for precision, models in variants.items():
        extra = {"quality": quality[precision]} if precision in quality else {}
        meta = dict(common, **{META_PRECISION: precision, META_METRICS: json.dumps(dict(metrics, **extra), sort_keys=True)})
        for base, model in models.items():
            onnx_export.attach_metadata(model, meta)
            ins, outs = specs[base]
            model.doc_string = (
                f"InfoGAN {base} ({precision}): {_describe(ins)} -> {_describe(outs)}. The latent template, "
                f"category-to-label mapping and metrics are in metadata_props ({META_TEMPLATE}, ...)."
            )
            onnx_export.check(model)
            name = model_name(base, precision)
            # TensorRT is for GPUs; int8 is the CPU variant and its quantization ops are not TensorRT's
            cfg = model_config(name, *specs[base], parameters=meta,
                               tensorrt=tensorrt and precision != "int8", tensorrt_fp16=precision == "fp16")
            extra = {}
            if base == GENERATOR_MODEL and precision in gpu_graphs:
                gpu = onnx_export.attach_metadata(gpu_graphs[precision], meta)
                gpu.doc_string = model.doc_string + f" The graph for CUDA: {GPU_MODEL_FILE}'s up-convolutions are kept."
                onnx_export.check(gpu)
                extra[GPU_MODEL_FILE] = gpu.SerializeToString()
            staged.append(StagedModel(name, model.SerializeToString(), cfg, extra_files=extra))
    return staged


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, as a dict."""
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
