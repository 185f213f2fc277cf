"""CLI commands of training: data, train, evaluate, misread, sweep (registered by infogan.cli).

torch is imported inside the commands, so the client's commands stay torch-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from infogan import defaults
from infogan.contract import InfoganError
from infogan.options import DATA_DIR, LATEST_RUN, RUNS_DIR, DataDirOpt, RunsDirOpt


def data(
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist")] = defaults.DATASET,
    data_dir: DataDirOpt = DATA_DIR,
) -> None:
    """Fetch a dataset's four IDX files and verify their checksums (idempotent)."""
    from infogan.training.data import fetch, verify

    folder = fetch(data_dir, dataset)
    verify(data_dir, dataset)
    typer.echo(f"{dataset}: 4 files verified in {folder}")


def _parse_template(base, categories: Optional[int], continuous: Optional[str], noise_dim: Optional[int],
                    noise_scale: Optional[float]):
    """The preset's template with the given parts replaced: K for the categorical
    code; '-1:1,-1:1' for continuous ranges."""
    from infogan.contract import LatentTemplate

    if categories is None and continuous is None and noise_dim is None and noise_scale is None:
        return None
    cats = base.categorical if categories is None else (categories,)
    try:
        conts = base.continuous if continuous is None else tuple(
            tuple(float(x) for x in r.split(":")) for r in continuous.split(",") if r.strip())
        if any(len(r) != 2 for r in conts):
            raise ValueError
    except ValueError:
        raise InfoganError(f"continuous={continuous!r} is invalid: give ranges like '-1:1,-1:1' (low:high)") from None
    return LatentTemplate(categorical=cats, continuous=conts, noise_dim=base.noise_dim if noise_dim is None else noise_dim,
                          noise_scale=base.noise_scale if noise_scale is None else noise_scale)


# what --resume may change: the run's own config.json holds everything else
RESUME_OPTIONS = {"resume", "epochs", "progress"}


def _refuse_ignored_on_resume(ctx: typer.Context) -> None:
    # a ParameterSource (click's enum, vendored by newer typer): DEFAULT unless the user gave it
    given = [p for p in ctx.params if p not in RESUME_OPTIONS
             and getattr(ctx.get_parameter_source(p), "name", "DEFAULT") != "DEFAULT"]
    if given:
        flags = ", ".join("--" + p.replace("_", "-") for p in given)
        raise InfoganError(f"{flags} cannot be used with --resume: a resumed run keeps its own config.json; "
                           "only --epochs may change (start a new run to change anything else)")


def train(
    ctx: typer.Context,
    preset: Annotated[str, typer.Option(help="default (2-core CPU), paper (original schedule), original (paper recipe as published), smoke (seconds)")] = defaults.PRESET,
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist")] = defaults.DATASET,
    seed: Annotated[int, typer.Option(help="Seed: a run is deterministic on CPU for a given seed.")] = defaults.SEED,
    data_dir: DataDirOpt = DATA_DIR,
    runs_dir: RunsDirOpt = RUNS_DIR,
    run_name: Annotated[Optional[str], typer.Option(help="Name of the run folder (default: dataset-preset-seed-time).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this folder (e.g. runs/latest) from its checkpoint.")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="A few steps on a small slice, in seconds (the smoke preset).")] = False,
    epochs: Annotated[Optional[int], typer.Option(help="Override: epochs of steps_per_epoch updates.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Override: batch size.")] = None,
    lambda_cat: Annotated[Optional[float], typer.Option(help="Override: weight of the categorical information term.")] = None,
    lambda_cont: Annotated[Optional[float], typer.Option(help="Override: weight of the continuous information term.")] = None,
    lambda_real: Annotated[Optional[float], typer.Option(help="Override: weight of the information between Q's categories of real images and of their small transforms (IIC; 0: off).")] = None,
    lambda_rotation: Annotated[Optional[float], typer.Option(help="Override: weight of the rotation prior on the first continuous code (0: off).")] = None,
    categories: Annotated[Optional[int], typer.Option(help="Latent template: K, the size of the categorical code (10 for MNIST).")] = None,
    continuous: Annotated[Optional[str], typer.Option(help="Latent template: continuous ranges, e.g. '-1:1,-1:1'.")] = None,
    noise_dim: Annotated[Optional[int], typer.Option(help="Latent template: noise variables.")] = None,
    noise_scale: Annotated[Optional[float], typer.Option(help="Latent template: noise ~ U(-s, s).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto (bf16 where native), fp32 or bf16.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (0: all cores). Results are exact for a seed and a thread count.")] = None,
    holdout: Annotated[Optional[int], typer.Option(help="Train without the last N training images and evaluate on them instead of the test set (for choosing a recipe).")] = None,
    ema_decay: Annotated[Optional[float], typer.Option(help="Override: publish the moving average of G's weights with this decay (0: G's latest weights).")] = None,
    overcluster: Annotated[Optional[int], typer.Option(help="Override: categories of IIC's auxiliary over-clustering head, trained on real images with lambda_real (0: none).")] = None,
    subheads: Annotated[Optional[int], typer.Option(help="Override: Q's categorical head and its auxiliary IIC sub-heads of the same categories, each trained on real images with lambda_real; only Q's own head is exported (1: none).")] = None,
    trunk_channels: Annotated[Optional[int], typer.Option(help="Override: channels of the trunk's first convolution, its second twice as many (the paper's 64; 16 to 256). 96: more faithful digits and a cleaner slant code on held-out runs, about 1.7x the time.")] = None,
    trunk_convolutions: Annotated[Optional[int], typer.Option(help="Override: the trunk's convolutions, 2 to 6 (the paper's 2 in every preset), each one more a 3 x 3 convolution at 7 x 7 pixels.")] = None,
    q_ema_decay: Annotated[Optional[float], typer.Option(help="Override: publish the moving average of D-and-Q's weights as the encoder, with this decay (0: their latest weights).")] = None,
    lr_d: Annotated[Optional[float], typer.Option(help="Override: Adam's learning rate for D's trunk and head.")] = None,
    lr_g: Annotated[Optional[float], typer.Option(help="Override: Adam's learning rate for G.")] = None,
    lr_q: Annotated[Optional[float], typer.Option(help="Override: Adam's learning rate for the Q-head.")] = None,
    lr_decay: Annotated[Optional[float], typer.Option(help="Override: the share of the last updates over which every learning rate falls linearly towards zero (0: constant).")] = None,
    noise_start: Annotated[Optional[float], typer.Option(help="Override: G first trains with noise ~ U(-s, s) of this narrower scale, widening linearly to the template's --noise-scale between --noise-widen-from and --noise-widen-to (0: the template's noise throughout).")] = None,
    noise_widen_from: Annotated[Optional[int], typer.Option(help="Override: the update the noise starts to widen at, with --noise-start.")] = None,
    noise_widen_to: Annotated[Optional[int], typer.Option(help="Override: the update the noise reaches the template's scale at, with --noise-start.")] = None,
    real_transform_strength: Annotated[Optional[float], typer.Option(help="Override: the real images' transform in the IIC term and the rotation prior, as a multiple of the small transform's ranges (1: +-15 degrees, scale 0.85-1.15, +-2 px).")] = None,
    real_copies: Annotated[Optional[int], typer.Option(help="Override: transformed copies of each real image in the IIC term and the rotation prior, each its own draw (1: one).")] = None,
    iic_marginal_weight: Annotated[Optional[float], typer.Option(help="Override: the weight of the marginals' entropy in the IIC term against the pairs' agreement (IIC's lamb; 1: the mutual information itself).")] = None,
    real_shear: Annotated[Optional[float], typer.Option(help="Override: the real images' transform in the IIC term and the rotation prior also shears, tilting vertical strokes by up to +- this many degrees (0: no shear).")] = None,
    real_warp: Annotated[Optional[float], typer.Option(help="Override: the real images' transform in the IIC term and the rotation prior also warps them smoothly, moving each pixel by up to +- this many pixels along each axis (0: no warp).")] = None,
    real_gamma: Annotated[Optional[float], typer.Option(help="Override: the real images' transform in the IIC term and the rotation prior also raises their intensities to a power drawn log-uniformly in [1/g, g], darker or lighter ink (1: none).")] = None,
    fake_gamma: Annotated[Optional[float], typer.Option(help="Override: the generated images' transform Q reads categories from also raises their intensities to a power drawn log-uniformly in [1/g, g], so G tells categories apart by shape, not brightness (1: none).")] = None,
    gamma_from: Annotated[Optional[int], typer.Option(help="Override: no gamma before this update; both gammas then rise linearly to their full power at --gamma-to (0: from the start).")] = None,
    gamma_to: Annotated[Optional[int], typer.Option(help="Override: the update both gammas reach their full power at, rising from --gamma-from (0: from the start).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress: a bar on a terminal, a plain line every 2% in a log (always in the run's progress.log).")] = True,
) -> None:
    """Train InfoGAN; writes a run folder with config, metrics, checkpoints and pictures."""
    from infogan.training.config import resolve
    from infogan.training.distributed import world_from_env
    from infogan.training.data import evaluation_words
    from infogan.training.runs import run_holdout
    from infogan.training.train import train as run_training

    if resume is not None:
        _refuse_ignored_on_resume(ctx)
        run = run_training(None, resume=resume, progress=progress, epochs=epochs)  # the run's own config.json
    else:
        preset = "smoke" if smoke else preset
        template = _parse_template(resolve(preset, dataset=dataset).template, categories, continuous, noise_dim, noise_scale)
        cfg = resolve(preset, dataset=dataset, seed=seed, data_dir=str(data_dir),
                      out_dir=str(runs_dir), run_name=run_name, epochs=epochs, batch_size=batch_size,
                      lambda_cat=lambda_cat, lambda_cont=lambda_cont, lambda_real=lambda_real,
                      lambda_rotation=lambda_rotation, template=template, precision=precision,
                      threads=threads, holdout=holdout, ema_decay=ema_decay,
                      q_ema_decay=q_ema_decay, overcluster=overcluster, subheads=subheads, trunk_channels=trunk_channels,
                      trunk_convolutions=trunk_convolutions, lr_d=lr_d, lr_g=lr_g, lr_q=lr_q, lr_decay=lr_decay,
                      noise_start=noise_start, noise_widen_from=noise_widen_from, noise_widen_to=noise_widen_to,
                      real_transform_strength=real_transform_strength, real_copies=real_copies,
                      iic_marginal_weight=iic_marginal_weight, real_shear=real_shear, real_warp=real_warp,
                      real_gamma=real_gamma, fake_gamma=fake_gamma, gamma_from=gamma_from, gamma_to=gamma_to)
        run = run_training(cfg, progress=progress)
    if not world_from_env().main:
        return  # under torchrun, rank 0 reports
    ev = json.loads((run / defaults.EVALUATION_FILE).read_text())
    # a --holdout run is scored on its held-out training images, never on the test set
    scored_on, _ = evaluation_words(run_holdout(run))
    typer.echo(f"run: {run}")
    typer.echo(f"Q {scored_on} accuracy: {100 * ev['accuracy']:.2f}% on {ev['n_images']} images; "
               f"{ev['labels_with_own_category']}/{len(ev['label_names'])} labels with a category of their own")
    typer.echo(f"category -> label: {ev['category_to_label']}")
    live = ev.get("encoder_live")
    if live:
        typer.echo(f"  (the encoder published is D-and-Q's moving average; their latest weights: "
                   f"{100 * live['accuracy']:.2f}%, {live['labels_with_own_category']}/{len(ev['label_names'])})")
    gen = ev.get("generation")
    if gen:
        fidelity = f"; fidelity {gen['fidelity']['ratio']:.1f}x the real-vs-real floor" if "fidelity" in gen else ""
        typer.echo(f"generator: purity {100 * gen['purity_mean']:.1f}% mean, {100 * min(gen['purity_per_category']):.0f}% "
                   f"worst; {gen['digits_generated']}/10 labels generated{fidelity} (infogan evaluate for more)")


def evaluate(
    run: Annotated[Path, typer.Option(help="Run folder (default: the latest).")] = LATEST_RUN,
    data_dir: DataDirOpt = DATA_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
    judge: Annotated[bool, typer.Option(help="Also judge the generated images with a supervised CNN (trained once, cached).")] = True,
) -> None:
    """Q as an unsupervised classifier on the test set (a --holdout run: on its held-out slice), and the
    generator judged: accuracy, confusion, category -> digit, category purity, slant, width and fidelity."""
    from infogan.training.data import evaluation_words
    from infogan.training.runs import evaluate_run, run_holdout

    scored_on, _ = evaluation_words(run_holdout(run))  # the run's config read (and checked) before the work
    ev = evaluate_run(run, data_dir, judge=judge)
    if as_json:
        typer.echo(json.dumps(ev, indent=2))
        return
    names = ev["label_names"]
    typer.echo(f"Q {scored_on} accuracy: {100 * ev['accuracy']:.2f}% ({ev['n_images']} images)")
    typer.echo("confusion (rows: true label, columns: category):")
    typer.echo("      " + "".join(f"{c:>6}" for c in range(len(ev["category_to_label"]))))
    for lbl, row in enumerate(ev["confusion"]):
        typer.echo(f"{names[lbl][:5]:>5} " + "".join(f"{v:>6}" for v in row))
    typer.echo("category -> label: " + ", ".join(
        f"{c}->{names[l] if l >= 0 else '-'}" for c, l in enumerate(ev["category_to_label"])))
    if "generation" in ev:
        gen = ev["generation"]
        typer.echo(f"generated images read as their category's label: {100 * gen['purity_mean']:.1f}% "
                   f"(per category: {', '.join(f'{100 * p:.0f}' for p in gen['purity_per_category'])}); "
                   f"{gen['digits_generated']}/10 labels generated")
        if "fidelity" in gen:
            f = gen["fidelity"]
            typer.echo(f"fidelity: {f['n']:,} generated images lie {f['ratio']:.1f}x as far from the {scored_on} images as "
                       f"real training images do (Fréchet distance {f['frechet']:.2f} in the judge's features; floor {f['floor']:.2f})")
        for j, c in enumerate(gen["codes"]):
            spearman = f" (Spearman {c['slant_spearman']:+.2f})" if "slant_spearman" in c else ""
            typer.echo(f"continuous code {j}: corr with slant {c['slant_corr']:+.2f}{spearman}, with width {c['width_corr']:+.2f}; "
                       f"label kept along the sweep {100 * c['digit_kept']:.0f}%")


def misread(
    run: Annotated[Path, typer.Option(help="Run folder (default: the latest).")] = LATEST_RUN,
    data_dir: DataDirOpt = DATA_DIR,
    out: Annotated[Optional[Path], typer.Option(help="The picture to write (default: the run's misread.png).")] = None,
    pairs: Annotated[int, typer.Option(help="The most frequent confusions to draw, two rows each.")] = defaults.MISREAD_PAIRS,
    per_row: Annotated[int, typer.Option(help="Images in a row.")] = defaults.MISREAD_PER_ROW,
) -> None:
    """Which real images Q reads as another class, each confusion's images above the generator's draws
    for the true class: a real style G never draws in a category has no category of its own. The
    images are those the run was evaluated on (its held-out slice with --holdout, else the test set)."""
    from infogan.training.misread import misread as draw

    shown = draw(run, data_dir, out, pairs=pairs, per_row=per_row)
    typer.echo(f"Q accuracy {100 * shown['accuracy']:.2f}% on the {shown['images']} ({shown['n_images']:,} images)")
    for c in shown["confusions"]:
        typer.echo(f"{c['true']} read as {c['read_as']}: {c['images']} images")
    typer.echo(f"wrote {shown['picture']}" if shown["picture"] else "no image is misread: nothing to draw")


def misread_shared(
    runs: Annotated[list[Path], typer.Argument(help="Run folders evaluated on the same images (at least 2).")],
    data_dir: DataDirOpt = DATA_DIR,
    out: Annotated[Optional[Path], typer.Option(help="The picture to write (default: misread_shared.png in the first run).")] = None,
    per_row: Annotated[int, typer.Option(help="Images in a row.")] = defaults.MISREAD_PER_ROW,
    against: Annotated[Optional[Path], typer.Option(help="A set an earlier misread-shared wrote (its picture's name with .json): also count, per run, how many of its images the run reads right.")] = None,
) -> None:
    """Which real images every run's Q misreads: the errors no recipe among the runs fixes, beside each
    run's own count, with a picture of them by true class and the set as JSON beside it."""
    from infogan.training.misread import shared

    found = shared(runs, data_dir, out, per_row=per_row, against=against)
    for r in found["runs"]:
        fixed = f", {r['known_read_right']:,} of {against}'s {found['known']:,} read right" if against else ""
        typer.echo(f"{r['run']}: Q accuracy {100 * r['accuracy']:.2f}%, {r['misread']:,} misread{fixed}")
    by_class = ", ".join(f"{name} {n}" for name, n in found["every_by_class"].items())
    typer.echo(f"misread by every run: {found['every']:,} of the {found['images']}'s {found['n_images']:,} images"
               + (f" ({by_class})" if by_class else ""))
    for c in found["confusions"]:
        typer.echo(f"{c['true']} read as {c['read_as']} (most often): {c['images']} images")
    typer.echo(f"wrote {found['picture']}" if found["picture"] else "no image is misread by every run: nothing to draw")
    typer.echo(f"wrote {found['set']}")


def sweep(
    runs: Annotated[list[str], typer.Argument(help="Seeds to train, each as seed or seed:threads, e.g. 0 1 2 0:1.")],
    preset: Annotated[str, typer.Option(help="The preset every run uses.")] = defaults.PRESET,
    threads: Annotated[Optional[int], typer.Option(help="Threads for runs that do not give their own (default: cores // parallel).")] = None,
    parallel: Annotated[int, typer.Option(help="Runs that train at once, each in a process of its own (on one GPU they share it).")] = 1,
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist")] = defaults.DATASET,
    data_dir: DataDirOpt = DATA_DIR,
    out_dir: Annotated[Path, typer.Option(help="Folder for the sweep's runs and its sweep.jsonl.")] = RUNS_DIR / "sweep",
    results: Annotated[Path, typer.Option(help="The Markdown table to write.")] = Path("RESULTS.md"),
    progress: Annotated[bool, typer.Option(help="Show a progress bar (one run at a time only).")] = True,
) -> None:
    """Train one run per seed (on 2 cores with bf16, 8-15 minutes a digits run and under 30 for Fashion-MNIST's 5,000
    updates; about 40 and 80 in fp32), --parallel at a time, and write
    RESULTS.md: minutes, Q accuracy, classes with a category, purity, slant, images/s and their total."""
    from infogan.training.sweep import parse_runs, sweep as run_sweep, total_images_per_s

    pairs = parse_runs(runs, threads, parallel)
    rows = run_sweep(preset, pairs, out_dir, results, data_dir=str(data_dir), dataset=dataset, progress=progress,
                     parallel=parallel, log=lambda s: typer.echo(s, err=True))
    for r in rows:
        rate, total = r.get("images_per_s"), total_images_per_s(r, rows)
        speed = "" if rate is None else f", {rate:,.0f} images/s"
        if total is not None:
            speed += f" (total {total:,.0f} images/s over {len(r['alongside'])} run{'s' * (len(r['alongside']) > 1)} at once)"
        typer.echo(f"{r['run']}: {100 * r['accuracy']:.2f}%, {r['own']}/{r['n_labels']} classes, {r['minutes']:.1f} min{speed}")
    typer.echo(f"wrote {results}")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
    app.command("data")(data)
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("misread")(misread)
    app.command("misread-shared")(misread_shared)
