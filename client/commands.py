"""The client's CLI commands: generate, traverse, encode, status.

Thin shells over plain functions in this module (which tests call directly)
and the infogan.client API. No torch, and the backends are imported only
when a command runs, so `infogan --help` stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from infogan import defaults
from infogan.contract import TRAVERSAL_RANGE, TRAVERSAL_STEPS, InfoganError
from infogan.options import (
    BACKEND,
    DEVICE,
    REPOSITORY,
    Backend,
    BackendOpt,
    ClientRepositoryOpt,
    DeviceOpt,
    ModelOpt,
    TimeoutOpt,
    UrlOpt,
    repository_option,
)


def open_client(cls, backend: Backend, url: str, repository: Path, timeout: float, model: str | None = None,
                device: str = DEVICE):
    """A Generator or Encoder on the chosen backend."""
    if Backend(backend) is Backend.onnx:
        return cls.from_repository(repository, model=model, device=device)
    return cls.from_triton(url, model=model, timeout=timeout)


# ---------------------------------------------------------------- plain functions


def parse_continuous(text: str | None) -> list[float] | None:
    """"0.5,-1" -> [0.5, -1.0]; finiteness and count are checked by the Generator."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InfoganError(f"continuous={text!r} is invalid: give comma-separated numbers, e.g. 0.5,-1") from None


def check_outputs(outs: list[Path], force: bool = False, suffixes: tuple[str, ...] = (".png", ".npy")) -> list[Path]:
    """Refuse, before any work, an output of another kind or one that would overwrite a file."""
    for p in outs:
        if p.suffix.lower() not in suffixes:
            raise InfoganError(f"out={p} is invalid: give a .png (image grid) or .npy (array) path"
                               if len(suffixes) > 1 else f"out={p} is invalid: this command writes a {suffixes[0]}")
        if p.exists() and not force:
            raise InfoganError(f"out={p} already exists: pass --force to overwrite it, or give another path")
    return outs


def write_images(images: np.ndarray, outs: list[Path], ncols: int, scale: int = 1) -> list[Path]:
    """Write [N, 1, 28, 28] as a PNG grid and/or a .npy array, by each path's suffix."""
    from infogan.files import atomic_path, make_grid, save_png

    for p in outs:
        if p.suffix.lower() == ".npy":
            with atomic_path(p) as tmp, open(tmp, "wb") as f:
                np.save(f, images)
        else:
            save_png(make_grid(images, ncols), p, scale)
    return outs


def traverse_images(gen, code: int = 0, steps: int = TRAVERSAL_STEPS, low: float = TRAVERSAL_RANGE[0],
                    high: float = TRAVERSAL_RANGE[1],
                    seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """The paper's Fig. 2: one row per category (in label order
    when the model maps categories to labels), columns sweeping continuous code
    `code` from low to high; the other codes at 0 and one noise vector for all
    (contract.traversal_latent, which also checks `code`).
    Returns images [rows * steps, 1, 28, 28] and the category of each row."""
    from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, traversal_latent

    t = gen.template
    if steps < 2:
        raise InfoganError(f"steps={steps} is invalid: a sweep needs at least 2 columns")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise InfoganError(f"range=[{low}, {high}] is invalid: need finite low < high")
    k = t.categories
    if gen.info.category_to_label is not None:
        rows = sorted(range(k), key=lambda c: gen.info.category_to_label[c])
    else:
        rows = list(range(k))
    z = traversal_latent(t, code, np.linspace(low, high, steps, dtype=np.float32), np.random.default_rng(seed),
                         categories=rows, shared_noise=True)
    return gen.run(z[NOISE], z[CATEGORICAL], z[CONTINUOUS]), rows


def format_encodings(rows: list[dict], sources: list[str]) -> str:
    """A fixed-width table: one line per image."""
    n_cont = len(rows[0]["continuous"]) if rows else 0
    head = ["image", "category", "label", "probability"] + [f"c{i + 2}" for i in range(n_cont)] + ["realness"]
    lines = []
    for src, r in zip(sources, rows):
        label = r.get("label_name", str(r["label"])) if "label" in r else "-"
        lines.append([src, str(r["category"]), label, f"{r['probability']:.3f}"]
                     + [f"{v:+.3f}" for v in r["continuous"]] + [f"{r['realness']:.3f}"])
    widths = [max(len(row[i]) for row in [head] + lines) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
    return "\n".join(fmt(r) for r in [head] + lines)


def format_status(s: dict) -> str:
    yes = lambda b: "yes" if b else "no"
    out = [f"server   {s['url']}  ({s['server']['name']} {s['server']['version']})",
           f"live     {yes(s['live'])}", f"ready    {yes(s['ready'])}", "models"]
    for m in s["models"]:
        reason = f"  ({m['reason']})" if m["reason"] else ""
        out.append(f"  {m['name']}  version {m['version'] or '-'}  {m['state'] or 'UNKNOWN'}{reason}")
        if m.get("label_purity"):
            out.append("    purity by label  " + "  ".join(f"{d}: {100 * p:.0f}%" for d, p in m["label_purity"].items()))
    if s.get("pair_mismatch"):
        out.append(s["pair_mismatch"])
    out.append("batching (executions by batch size)")
    for st in s["statistics"]:
        sizes = ", ".join(f"{b['batch_size']}: {b['executions']} x {b['compute_ms_mean']:.2f} ms" for b in st["batches"]) or "none yet"
        out.append(f"  {st['name']}/{st['version']}  {st['inference_count']} inferences in "
                   f"{st['execution_count']} executions (mean batch {st['mean_batch']:.1f}); {sizes}")
    return "\n".join(out)


# ---------------------------------------------------------------- commands


def generate(
    n: Annotated[int, typer.Option("--n", "-n", help="How many images.")] = 16,
    category: Annotated[Optional[int], typer.Option(help="Fix the category (0..K-1) of every image.")] = None,
    label: Annotated[Optional[int], typer.Option("--label", "--digit", help="Fix the category that the model's metadata maps to this label (the digit on MNIST).")] = None,
    continuous: Annotated[Optional[str], typer.Option(help="Comma-separated values of the continuous codes, e.g. 1.5,0.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the sampled noise and codes.")] = None,
    out: Annotated[Optional[list[Path]], typer.Option("--out", "-o", help="A .png grid and/or a .npy array; repeatable.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite output files that exist.")] = False,
    columns: Annotated[int, typer.Option(help="Images per grid row.")] = 8,
    scale: Annotated[int, typer.Option(help="Upscale the PNG by this factor.")] = 2,
    backend: BackendOpt = BACKEND,
    device: DeviceOpt = DEVICE,
    url: UrlOpt = defaults.URL,
    repository: ClientRepositoryOpt = REPOSITORY,
    timeout: TimeoutOpt = defaults.TIMEOUT_S,
    model: ModelOpt = None,
) -> None:
    """Generate n images for a category (or a label: the digit on MNIST) and given continuous codes."""
    from infogan.client import Generator

    outs = check_outputs(out or [Path("generated.png")], force)
    values = parse_continuous(continuous)
    with open_client(Generator, backend, url, repository, timeout, model, device) as gen:
        images = gen.generate(n, category=category, label=label, continuous=values, seed=seed)
        warning = gen.info.purity_warning(label) if label is not None else None
    if warning:
        typer.echo(warning, err=True)
    for p in write_images(images, outs, columns, scale):
        typer.echo(f"wrote {p} ({len(images)} images)")


def traverse(
    code: Annotated[int, typer.Option(help="Which continuous code to sweep (0 = c2, the paper's rotation).")] = 0,
    steps: Annotated[int, typer.Option(help="Columns of the sweep.")] = TRAVERSAL_STEPS,
    low: Annotated[float, typer.Option(help="Start of the sweep.")] = TRAVERSAL_RANGE[0],
    high: Annotated[float, typer.Option(help="End of the sweep.")] = TRAVERSAL_RANGE[1],
    seed: Annotated[int, typer.Option(help="Seed of the shared noise vector.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="The PNG to write.")] = Path("traverse.png"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
    scale: Annotated[int, typer.Option(help="Upscale the PNG by this factor.")] = 2,
    backend: BackendOpt = BACKEND,
    device: DeviceOpt = DEVICE,
    url: UrlOpt = defaults.URL,
    repository: ClientRepositoryOpt = REPOSITORY,
    timeout: TimeoutOpt = defaults.TIMEOUT_S,
    model: ModelOpt = None,
) -> None:
    """The paper's figure: a row per category, columns sweeping one continuous code (by default over twice
    its training range, as the paper's Fig. 2)."""
    from infogan.client import Generator

    check_outputs([out], force, suffixes=(".png",))
    with open_client(Generator, backend, url, repository, timeout, model, device) as gen:
        images, rows = traverse_images(gen, code, steps, low, high, seed)
    write_images(images, [out], steps, scale)
    typer.echo(f"wrote {out} ({len(rows)} rows x {steps} columns, code {code} over [{low:g}, {high:g}])")


def encode(
    images: Annotated[list[Path], typer.Argument(help="PNG files (28x28 grayscale) or IDX image files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    limit: Annotated[Optional[int], typer.Option(help="Encode only the first N images.")] = None,
    backend: BackendOpt = BACKEND,
    device: DeviceOpt = DEVICE,
    url: UrlOpt = defaults.URL,
    repository: ClientRepositoryOpt = REPOSITORY,
    timeout: TimeoutOpt = defaults.TIMEOUT_S,
    model: ModelOpt = None,
) -> None:
    """Category (and label), its probability and the continuous codes of each image."""
    from infogan.client import Encoder
    from infogan.client.images import load_images

    if limit is not None and limit < 1:
        raise InfoganError(f"limit={limit} is invalid: give at least 1")
    batch, sources = load_images(images)
    batch, sources = batch[:limit], sources[:limit]
    with open_client(Encoder, backend, url, repository, timeout, model, device) as enc:
        rows = enc.encode(batch).rows()
    if as_json:
        typer.echo(json.dumps([{"image": s, **r} for s, r in zip(sources, rows)], indent=1))
    else:
        typer.echo(format_encodings(rows, sources))


def status(
    url: UrlOpt = defaults.URL,
    timeout: TimeoutOpt = defaults.STATUS_TIMEOUT_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    repository: repository_option("The repository the server serves: the generator/encoder pair check reads each served model.onnx's own checkpoint hash there.") = REPOSITORY,
) -> None:
    """Server liveness and readiness, models and versions, Triton's batching statistics."""
    from infogan.client.triton_backend import server_status

    s = server_status(url, timeout, repository)
    typer.echo(json.dumps(s, indent=1) if as_json else format_status(s))


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("traverse")(traverse)
    app.command("encode")(encode)
    app.command("status")(status)
