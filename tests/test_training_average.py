"""The published generator: a moving average of G's weights, when the config asks for one."""


import pytest
import torch

from infogan.contract import LatentTemplate
from infogan.training.average import GeneratorAverage, calibrate_generator
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.config import resolve
from infogan.training.model import Generator
from infogan.training.train import train


def test_the_average_follows_the_warm_up_then_the_decay_and_leaves_g_alone():
    torch.manual_seed(0)
    g = Generator(LatentTemplate())
    avg = GeneratorAverage(g, decay=0.9)
    start = [p.clone() for p in avg.g.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    live = [p.clone() for p in g.parameters()]
    avg.update(g)  # update 0: d = min(0.9, 1/10) = 0.1
    for a, s, l in zip(avg.g.parameters(), start, live):
        assert torch.allclose(a, 0.1 * s + 0.9 * l, atol=1e-6)
    avg.updates = 1000  # late: d = decay
    before = [p.clone() for p in avg.g.parameters()]
    avg.update(g)
    for a, b, l in zip(avg.g.parameters(), before, live):
        assert torch.allclose(a, 0.9 * b + 0.1 * l, atol=1e-6)
    assert all(torch.equal(p, l) for p, l in zip(g.parameters(), live))
    assert not any(p.requires_grad for p in avg.g.parameters())
    with pytest.raises(ValueError, match="decay=1"):
        GeneratorAverage(g, 1)


def test_calibration_measures_batch_norm_on_generated_batches_without_touching_torchs_rng():
    torch.manual_seed(0)
    g = Generator(LatentTemplate())
    state = torch.get_rng_state()
    a, b = calibrate_generator(g), calibrate_generator(g)
    assert torch.equal(torch.get_rng_state(), state)
    bn = a.fc[1]
    assert not a.training and bn.momentum == 0.1
    assert torch.equal(bn.running_mean, b.fc[1].running_mean)  # seeded: the same statistics every time
    assert not torch.allclose(bn.running_mean, g.fc[1].running_mean)  # measured, not copied
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), g.parameters()))


def _published(run):
    ckpt = load_checkpoint(run / "checkpoint.pt")
    return ckpt, build_models(ckpt)[0].state_dict()


def test_a_run_with_ema_decay_publishes_the_average_and_resumes_it_exactly(tmp_path, data_dir):
    base = dict(data_dir=str(data_dir), out_dir=str(tmp_path), epochs=2, ema_decay=0.9)
    straight = train(resolve("smoke", run_name="straight", **base), progress=False)
    half = train(resolve("smoke", run_name="half", **{**base, "epochs": 1}), progress=False)
    resumed = train(None, resume=half, progress=False, epochs=2)
    ckpt, published = _published(straight)
    saved = ckpt["generator_average"]
    assert saved["updates"] == 8 and saved["decay"] == 0.9
    # (test_training_device's whole run has the judge: it judges the average and the live G)
    # export builds the average, not G's latest weights
    assert all(torch.equal(published[k], saved["weights"][k]) for k in published)
    assert not torch.equal(published["fc.0.weight"], ckpt["generator"]["fc.0.weight"])
    # a resumed run continues the average where the checkpoint left it
    _, again = _published(resumed)
    assert all(torch.equal(published[k], again[k]) for k in published), [k for k in published
                                                                        if not torch.equal(published[k], again[k])]


def test_ema_decay_outside_zero_to_one_is_refused_in_one_line():
    from infogan.contract import InfoganError
    with pytest.raises(InfoganError, match=r"ema_decay=1.0 is invalid: must be in \[0, 1\)"):
        resolve("smoke", ema_decay=1.0)


def test_a_run_with_q_ema_decay_publishes_the_averaged_encoder_trains_the_same_and_resumes_it(tmp_path, data_dir):
    import json

    base = dict(data_dir=str(data_dir), out_dir=str(tmp_path), epochs=2)
    plain = train(resolve("smoke", run_name="plain", **base), progress=False)
    averaged = train(resolve("smoke", run_name="averaged", q_ema_decay=0.9, **base), progress=False)
    half = train(resolve("smoke", run_name="half", q_ema_decay=0.9, **{**base, "epochs": 1}), progress=False)
    resumed = train(None, resume=half, progress=False, epochs=2)
    p, a, r = (load_checkpoint(run / "checkpoint.pt") for run in (plain, averaged, resumed))
    # averaging watches training and never changes it: the live weights are those of the plain run
    assert all(torch.equal(p["discriminator"][k], a["discriminator"][k]) for k in p["discriminator"])
    assert all(torch.equal(p["generator"][k], a["generator"][k]) for k in p["generator"])
    saved = a["discriminator_average"]
    assert saved["updates"] == 8 and saved["decay"] == 0.9
    # export's encoder is the average with batch norm measured on real images, not D's latest weights
    published = build_models(a)[1].state_dict()
    key = "trunk.net.0.weight"
    assert torch.equal(published[key], saved["weights"][key])
    assert not torch.equal(published[key], a["discriminator"][key])
    assert not torch.equal(published["q_head.net.1.running_mean"], saved["weights"]["q_head.net.1.running_mean"])
    # the run reports the live encoder beside the published one; the plain run has no such entry
    ev, ev_plain = (json.loads((run / "evaluation.json").read_text()) for run in (averaged, plain))
    assert ev["encoder_live"]["accuracy"] == ev_plain["accuracy"] and "encoder_live" not in ev_plain
    logged = [json.loads(line) for line in (averaged / "metrics.jsonl").read_text().splitlines()]
    plain_logged = [json.loads(line) for line in (plain / "metrics.jsonl").read_text().splitlines()]
    assert ([r["accuracy_live"] for r in logged if r["kind"] == "eval"]
            == [r["accuracy"] for r in plain_logged if r["kind"] == "eval"])  # at every evaluation
    # a resumed run continues the average where the checkpoint left it
    assert all(torch.equal(saved["weights"][k], r["discriminator_average"]["weights"][k]) for k in saved["weights"])
    assert all(torch.equal(a["discriminator_calibrated"][k], r["discriminator_calibrated"][k])
               for k in a["discriminator_calibrated"])


def test_q_ema_decay_outside_zero_to_one_is_refused_in_one_line():
    from infogan.contract import InfoganError
    with pytest.raises(InfoganError, match=r"q_ema_decay=-0.5 is invalid: must be in \[0, 1\)"):
        resolve("smoke", q_ema_decay=-0.5)
