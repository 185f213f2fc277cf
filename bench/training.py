"""Training throughput: the project's step against a naive eager step, side by side;
and the project's step with glibc's allocator defaults against the memory training keeps
(training/memory.py), each in fresh interpreters taken in turn.

The reference is the same networks (the preset's) trained the way the popular
public implementations do it: fp32 eager, D on real and on detached fakes, then
a G+Q step whose backward also computes D's weight gradients (thrown away).
Both sides run in the same process, alternating in rounds, so machine noise
hits both alike; the ratio is the figure that counts.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from infogan.bench.timing import torch_matmul_gflops
from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE
from infogan.training.config import resolve
from infogan.training.losses import d_loss, g_adversarial_loss, info_loss
from infogan.training.memory import keep_freed_memory
from infogan.training.model import Discriminator, Generator
from infogan.training.train import BatchStream, make_optimizers, select_precision, train_step


def naive_step(cfg, g, d, opt_d, opt_gq, real, z):
    t = cfg.template
    fake = g(z[NOISE], z[CATEGORICAL], z[CONTINUOUS])
    d_real, _, _ = d(real)
    d_fake, _, _ = d(fake.detach())
    loss_d = d_loss(d_real, d_fake)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    d_fake, q_cat, q_cont = d(fake)
    info, _ = info_loss(t, q_cat, q_cont, z[CATEGORICAL].argmax(1), z[CONTINUOUS], cfg.lambda_cat, cfg.lambda_cont)
    loss = g_adversarial_loss(d_fake) + info
    opt_gq.zero_grad()
    loss.backward()
    opt_gq.step()


def _setup(cfg, naive: bool):
    torch.manual_seed(0)
    g, d = Generator(cfg.template), Discriminator(cfg.template, **cfg.architecture())
    if naive:
        opt_d = torch.optim.Adam([*d.trunk.parameters(), *d.d_head.parameters()], cfg.lr_d, betas=(0.5, 0.999))
        opt_g = torch.optim.Adam([*g.parameters(), *d.q_head.parameters()], cfg.lr_g, betas=(0.5, 0.999))
    else:
        opt_d, opt_g = make_optimizers(cfg, g, d)
    return g, d, opt_d, opt_g


def run(quick: bool = False, batch_size: int | None = None) -> dict:
    """Train steps per second, ours against the naive step; batch_size=None: the default preset's batch."""
    cfg = resolve("default") if batch_size is None else resolve("default", batch_size=batch_size)
    batch_size = cfg.batch_size
    images = torch.rand(4096, 1, 28, 28)
    stream = BatchStream(cfg, images)
    amp = select_precision(cfg, torch.device("cpu"))
    autocast = _autocast(amp)
    ours, ref = _setup(cfg, naive=False), _setup(cfg, naive=True)

    def do(which, step):
        real, z = stream.real(step), stream.latent(step, "cpu")
        if which == "ours":
            train_step(cfg, *ours, real, z, autocast)
        else:
            naive_step(cfg, *ref, real, z)

    for which in ("ours", "naive"):  # warm-up: allocator, oneDNN kernels
        for s in range(3):
            do(which, s)
    rounds, per_round = (2, 5) if quick else (5, 10)
    rates = {"ours": [], "naive": []}
    step = 0
    for _ in range(rounds):
        for which in ("naive", "ours"):
            t0 = time.perf_counter()
            for _ in range(per_round):
                do(which, step)
                step += 1
            rates[which].append(per_round * batch_size / (time.perf_counter() - t0))

    with FlopCounterMode(display=False) as fc:
        do("naive", 0)
    flops_per_image = fc.get_total_flops() / batch_size
    fp32 = torch_matmul_gflops(1.0)
    bf16 = torch_matmul_gflops(1.0, dtype=torch.bfloat16) if amp else None
    ours_ips, naive_ips = statistics.median(rates["ours"]), statistics.median(rates["naive"])
    return {
        "batch_size": batch_size,
        "precision": "bf16" if amp else "fp32",
        "ours_images_per_s": ours_ips,
        "naive_images_per_s": naive_ips,
        "speedup": ours_ips / naive_ips,
        "flops_per_image": flops_per_image,
        "matmul_fp32_gflops": fp32,
        "matmul_bf16_gflops": bf16,
        # effective rate: the naive step's FLOPs (the work to be done) per second
        "ours_fraction_of_fp32_matmul": ours_ips * flops_per_image / (fp32 * 1e9),
        "naive_fraction_of_fp32_matmul": naive_ips * flops_per_image / (fp32 * 1e9),
        "allocator": allocator(quick),
    }


def _autocast(amp):
    return (lambda: torch.autocast("cpu", dtype=amp)) if amp else contextlib.nullcontext


ALLOCATOR_MODES = ("glibc", "keep")  # glibc's defaults; training's kept memory


def allocator_child() -> None:
    """In a fresh interpreter, argv: mode (ALLOCATOR_MODES), trunk channels, threads, steps. Prints the
    project's step's images/s (after 3 warm-up steps), or nothing where memory cannot be kept (not glibc)."""
    mode, channels, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if mode == "keep" and not keep_freed_memory():
        return
    torch.set_num_threads(threads)
    cfg = resolve("default", trunk_channels=channels)
    stream = BatchStream(cfg, torch.rand(4096, 1, 28, 28))
    autocast, models = _autocast(select_precision(cfg, torch.device("cpu"))), _setup(cfg, naive=False)
    for s in range(steps + 3):
        if s == 3:
            t0 = time.perf_counter()
        train_step(cfg, *models, stream.real(s), stream.latent(s, "cpu"), autocast)
    print(steps * cfg.batch_size / (time.perf_counter() - t0))


def allocator(quick: bool = False) -> dict:
    """The project's step with glibc's defaults against kept memory: images/s, the median of fresh
    interpreters taken in turn. Cases (trunk channels, threads): the paper's trunk at this process's
    thread count; in the full run also a trunk of 96 channels (--trunk-channels 96) and the paper's
    trunk on 1 thread. Empty where the C library is not glibc."""
    rounds, steps = (1, 10) if quick else (3, 20)
    threads = torch.get_num_threads()
    cases = [(64, threads)] if quick else list(dict.fromkeys([(64, threads), (96, threads), (64, 1)]))
    out = {"cases": []}
    for width, n in cases:
        rates: dict[str, list[float]] = {m: [] for m in ALLOCATOR_MODES}
        for _ in range(rounds):
            for mode in ALLOCATOR_MODES:
                done = subprocess.run([sys.executable, "-c", "from infogan.bench.training import allocator_child; "
                                       "allocator_child()", mode, str(width), str(n), str(steps)],
                                      capture_output=True, text=True, check=True)
                if not done.stdout.strip():
                    return {}
                rates[mode].append(float(done.stdout.split()[-1]))
        glibc, keep = statistics.median(rates["glibc"]), statistics.median(rates["keep"])
        out["cases"].append({"trunk_channels": width, "threads": n, "glibc_images_per_s": glibc,
                             "keep_images_per_s": keep, "speedup": keep / glibc})
    return out
