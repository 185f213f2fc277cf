"""An exponential moving average of the generator's weights, the generator export publishes.

G's weights move with every update of a two-player game; their average over the last
~1/(1 - decay) updates draws more realistic images than the latest weights (Yazici et al.
2019, "The Unusual Effectiveness of Averaging in GAN Training"; Karras et al. 2018 export
such an average). Only the copy is averaged: training itself is unchanged.

The average's batch-norm statistics are not averaged: they are measured again on the
averaged weights (in train mode, over latents drawn as the template says, a fixed seed),
as the encoder's are measured again on real images.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, sample_latent

CALIBRATION_LATENTS = 5000  # latents whose batch statistics the averaged G keeps
# the first training images whose batch statistics the published encoder keeps (evaluate.py
# calibrate_batchnorm): training and every study that rebuilds that encoder read this many
CALIBRATION_IMAGES = 5000
CALIBRATION_BATCH = 500  # images or latents per train-mode pass while measuring them


class WeightAverage:
    """average <- d * average + (1 - d) * module after each update, on the module's device,
    where d = min(decay, (1 + t) / (10 + t)) at update t: early on the average forgets its
    start (random weights) quickly, later it averages over ~1/(1 - decay) updates. Only the
    parameters are averaged; batch-norm statistics are measured again by whoever uses the copy."""

    def __init__(self, module: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay={decay} must be in (0, 1)")
        self.decay, self.updates = decay, 0
        self.module = copy.deepcopy(module).eval()
        self._params = list(self.module.parameters())  # the copy's parameters, listed once, not per update
        for p in self._params:
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._params, list(module.parameters()), 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


class GeneratorAverage(WeightAverage):
    """G's moving average: what the recipe publishes with ema_decay."""

    @property
    def g(self) -> torch.nn.Module:
        return self.module

    def calibrated(self, seed: int = 0) -> torch.nn.Module:
        """The averaged G with batch-norm statistics of its own, in eval mode (a copy)."""
        return calibrate_generator(self.module, seed)


@torch.no_grad()
def calibrate_generator(g: torch.nn.Module, seed: int = 0, n: int = CALIBRATION_LATENTS,
                        batch: int = CALIBRATION_BATCH) -> torch.nn.Module:
    """A copy of g whose batch-norm statistics are a cumulative average over n latents
    drawn as its template says (numpy-seeded: torch's RNG is left as it was)."""
    g = copy.deepcopy(g)
    bns = [m for m in g.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    g.train()
    device = next(g.parameters()).device
    rng = np.random.default_rng([seed, 3])
    for i in range(0, n, batch):
        z = sample_latent(g.template, min(batch, n - i), rng)
        g(*(torch.from_numpy(z[k]).to(device) for k in (NOISE, CATEGORICAL, CONTINUOUS)))
    for m in bns:
        m.momentum = 0.1
    return g.eval()
