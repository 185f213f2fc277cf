import math

import numpy as np
import pytest
import torch

from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, InfoganError, LatentTemplate, sample_latent
from infogan.training.checkpoint import build_models, load_checkpoint, save_checkpoint
from infogan.training.config import resolve
from infogan.training.losses import d_loss, g_adversarial_loss, info_loss
from infogan.training.model import Discriminator, Encoder, Generator


def _latent(t, n):
    z = sample_latent(t, n, np.random.default_rng(0))
    return [torch.from_numpy(z[k]) for k in (NOISE, CATEGORICAL, CONTINUOUS)]


@pytest.mark.parametrize("n", [1, 7])
def test_model_shapes(n):
    t = LatentTemplate(categorical=(12,), continuous=((-1, 1),) * 3, noise_dim=20)
    g, d = Generator(t).eval(), Discriminator(t).eval()
    img = g(*_latent(t, n))
    assert img.shape == (n, 1, 28, 28)
    assert img.min() >= 0 and img.max() <= 1
    logit, cat, cont = d(img)
    assert logit.shape == (n, 1) and cat.shape == (n, 12) and cont.shape == (n, 3)
    probs, mean, real = Encoder(d)(img)
    assert torch.allclose(probs.sum(1), torch.ones(n))
    assert real.shape == (n, 1) and ((real > 0) & (real < 1)).all()


def test_the_papers_layers_are_there():
    g, d = Generator(LatentTemplate()), Discriminator(LatentTemplate())
    assert [m.out_features for m in g.fc if isinstance(m, torch.nn.Linear)] == [1024, 6272]
    convs = [m for m in d.trunk.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2))]
    assert [m.negative_slope for m in d.trunk.net if isinstance(m, torch.nn.LeakyReLU)] == [0.1, 0.1, 0.1]


def test_d_loss_on_fixed_logits():
    # D undecided (logit 0) on both: 2 ln 2
    assert d_loss(torch.zeros(4, 1), torch.zeros(4, 1)).item() == pytest.approx(2 * math.log(2))
    # D right and confident: near 0; G's loss then large
    assert d_loss(torch.full((4, 1), 20.0), torch.full((4, 1), -20.0)).item() < 1e-6
    assert g_adversarial_loss(torch.full((4, 1), -20.0)).item() == pytest.approx(20.0, abs=1e-6)


def test_info_loss_bound_reaches_the_code_entropy_when_q_recovers_the_code():
    t = LatentTemplate()
    idx = torch.arange(10)
    cont = torch.rand(10, 2) * 2 - 1
    perfect = torch.full((10, 10), -30.0).scatter(1, idx[:, None], 30.0)
    loss, l_i = info_loss(t, perfect, cont.clone(), idx, cont, 1.0, 0.5)
    assert l_i.item() == pytest.approx(math.log(10), abs=1e-5) and loss.item() == pytest.approx(0.0, abs=1e-5)
    # Q knows nothing: uniform logits give CE = ln 10, so the bound is 0
    loss, l_i = info_loss(t, torch.zeros(10, 10), torch.zeros(10, 2), idx, cont, 1.0, 0.0)
    assert l_i.item() == pytest.approx(0.0, abs=1e-6) and loss.item() == pytest.approx(math.log(10), abs=1e-6)
    # continuous term: lambda * half the squared error summed over codes
    err = torch.tensor([[1.0, 2.0]])
    loss, _ = info_loss(t, perfect[:1], err, idx[:1], torch.zeros(1, 2), 0.0, 0.5)
    assert loss.item() == pytest.approx(0.5 * 0.5 * 5.0)


def test_checkpoint_round_trip_rebuilds_identical_models(tmp_path):
    t = LatentTemplate(categorical=(10,), continuous=((-1, 1),), noise_dim=5)
    g, d = Generator(t), Discriminator(t)
    save_checkpoint(tmp_path / "c.pt", {"template": t.to_dict(), "model": {"leaky_slope": 0.1},
                                        "generator": g.state_dict(), "discriminator": d.state_dict(), "step": 3})
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away
    g2, d2 = build_models(load_checkpoint(tmp_path / "c.pt"))
    for a, b in [(g, g2), (d, d2)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_corrupted_and_incompatible_checkpoints_give_one_line(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InfoganError, match="corrupted"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(InfoganError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    t = LatentTemplate()
    g, d = Generator(t), Discriminator(t)
    other = LatentTemplate(categorical=(5,))
    save_checkpoint(tmp_path / "c.pt", {"template": other.to_dict(), "generator": g.state_dict(), "discriminator": d.state_dict()})
    with pytest.raises(InfoganError, match="do not fit latent template"):
        build_models(load_checkpoint(tmp_path / "c.pt"))


class _Payload:
    """Anything but tensors and plain data: unpickling it would run code."""


def test_a_checkpoint_holding_objects_is_refused_unloaded(tmp_path):
    t = LatentTemplate()
    g, d = Generator(t), Discriminator(t)
    save_checkpoint(tmp_path / "c.pt", {"template": t.to_dict(), "generator": g.state_dict(),
                                        "discriminator": d.state_dict(), "extra": _Payload()})
    with pytest.raises(InfoganError, match="corrupted or not a checkpoint") as e:
        load_checkpoint(tmp_path / "c.pt")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("overrides,needle", [
    ({"preset": "huge"}, "preset='huge'"),
    ({"dataset": "cifar"}, "dataset='cifar'"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"lambda_cont": -0.1}, "lambda_cont=-0.1"),
    ({"epochs": -1}, "epochs=-1"),
])
def test_bad_configuration_is_refused_before_any_work(overrides, needle):
    with pytest.raises(InfoganError, match=needle):
        resolve(**overrides)


def test_precision_is_bf16_on_a_cuda_device_and_fp32_when_asked(monkeypatch):
    # A test double for the GPU: this machine has none, so CUDA's bf16 support is
    # stubbed to say yes; on a real GPU the same function sees the real answer.
    from infogan.training.train import select_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert select_precision(resolve("default"), torch.device("cuda")) is torch.bfloat16
    assert select_precision(resolve("default", precision="fp32"), torch.device("cuda")) is None
    assert select_precision(resolve("default", precision="bf16"), torch.device("cpu")) is torch.bfloat16


def test_auto_precision_on_a_device_that_is_neither_cpu_nor_cuda_is_fp32_whatever_the_cpu_has(monkeypatch):
    # On a CPU with native bf16 (avx512_bf16, AMX), auto once chose bf16 for the meta device
    # that stands in for a GPU in test_training_device.py, and autocast refused the device.
    import infogan.training.train as training

    monkeypatch.setattr(training, "has_native_bf16", lambda: True)
    assert training.select_precision(resolve("default"), torch.device("cpu")) is torch.bfloat16
    assert training.select_precision(resolve("default"), torch.device("meta")) is None
    with pytest.raises(InfoganError, match="precision=bf16 cannot be used on device meta"):
        training.select_precision(resolve("default", precision="bf16"), torch.device("meta"))


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    t = LatentTemplate()
    g, d = Generator(t), Discriminator(t)
    state = {"template": t.to_dict(), "generator": g.state_dict(), "discriminator": d.state_dict(), "step": 1}
    save_checkpoint(tmp_path / "c.pt", state)
    before = (tmp_path / "c.pt").read_bytes()
    real_save = torch.save

    def disk_fills_up(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # part of the bytes land, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_fills_up)
    with pytest.raises(InfoganError, match="could not be written \\(No space left on device\\): the previous checkpoint is kept"):
        save_checkpoint(tmp_path / "c.pt", {**state, "step": 2})
    assert (tmp_path / "c.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 1
