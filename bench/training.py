"""Training throughput: the project's step against a naive eager step, side by side.

The reference is the paper architecture trained the way the popular public
implementations do it: fp32 eager, D on real and on detached fakes, then a G+Q
step whose backward also computes D's weight gradients (thrown away). Both
sides run in the same process, alternating in rounds, so machine noise hits
both alike; the ratio is the figure that counts.
"""

from __future__ import annotations

import contextlib
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from infogan.bench.timing import torch_matmul_gflops
from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE
from infogan.training.config import resolve
from infogan.training.losses import d_loss, g_adversarial_loss, info_loss
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
    g, d = Generator(cfg.template), Discriminator(cfg.template, cfg.leaky_slope)
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
    autocast = (lambda: torch.autocast("cpu", dtype=amp)) if amp else contextlib.nullcontext
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
    }

