import numpy as np
import pytest

from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, InfoganError, LatentTemplate, sample_latent


def test_default_template_is_the_papers():
    t = LatentTemplate()
    assert t.categorical == (10,) and t.continuous == ((-1.0, 1.0), (-1.0, 1.0)) and t.noise_dim == 62
    assert t.input_dim == 74
    assert t.entropy() == pytest.approx(np.log(10))


def test_sampled_latents_have_the_contract_shapes_ranges_and_one_hot_rows():
    t = LatentTemplate(categorical=(10,), continuous=((-1, 1), (0, 5)), noise_dim=7)
    z = sample_latent(t, 500, np.random.default_rng(0))
    assert set(z) == {NOISE, CATEGORICAL, CONTINUOUS}  # exactly the generator's inputs
    assert z[NOISE].shape == (500, 7) and z[NOISE].dtype == np.float32
    assert np.abs(z[NOISE]).max() <= 1.0
    assert z[CATEGORICAL].shape == (500, 10)
    assert (z[CATEGORICAL].sum(1) == 1).all()
    assert set(np.unique(z[CATEGORICAL])) == {0.0, 1.0}
    assert z[CONTINUOUS].shape == (500, 2)
    assert z[CONTINUOUS][:, 0].min() >= -1 and z[CONTINUOUS][:, 0].max() <= 1
    assert z[CONTINUOUS][:, 1].min() >= 0 and z[CONTINUOUS][:, 1].max() <= 5 and z[CONTINUOUS][:, 1].max() > 4
    # every category is drawn
    assert len(np.unique(z[CATEGORICAL].argmax(1))) == 10


def test_sampling_is_deterministic_for_a_seed():
    t = LatentTemplate()
    a, b = sample_latent(t, 8, np.random.default_rng(3)), sample_latent(t, 8, np.random.default_rng(3))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_fixed_categories_and_continuous_values_are_used():
    t = LatentTemplate()
    z = sample_latent(t, 3, np.random.default_rng(0), categories=[7, 7, 2], continuous=[[0.5, -2], [0, 0], [1, 1]])
    assert list(z[CATEGORICAL].argmax(1)) == [7, 7, 2]
    assert z[CONTINUOUS][0].tolist() == [0.5, -2.0]


@pytest.mark.parametrize("kwargs,needle", [
    ({"categories": [10]}, "category=10"),
    ({"categories": [-1]}, "category=-1"),
    ({"continuous": [[float("nan"), 0]]}, "finite"),
])
def test_bad_latent_values_are_refused_with_one_line(kwargs, needle):
    with pytest.raises(InfoganError, match=needle) as e:
        sample_latent(LatentTemplate(), 1, np.random.default_rng(0), **kwargs)
    assert "\n" not in str(e.value)


def test_zero_batch_is_refused():
    with pytest.raises(InfoganError, match="n=0"):
        sample_latent(LatentTemplate(), 0, np.random.default_rng(0))


@pytest.mark.parametrize("kwargs,needle", [
    ({"categorical": (1,)}, "categorical=\\[1\\] is invalid.*size >= 2"),
    ({"categorical": (10, 3)}, "categorical=\\[10, 3\\] is invalid.*exactly one categorical code"),
    ({"categorical": ()}, "categorical=\\[\\] is invalid.*exactly one"),
    ({"continuous": ((1.0, -1.0),)}, "low < high"),
    ({"noise_dim": 0}, "noise_dim=0"),
    ({"noise_dim": -3}, "noise_dim=-3"),
])
def test_bad_templates_are_refused(kwargs, needle):
    with pytest.raises(InfoganError, match=needle):
        LatentTemplate(**kwargs)


def test_template_round_trips_through_json():
    t = LatentTemplate(categorical=(4,), continuous=((-1, 1),), noise_dim=16)
    assert LatentTemplate.from_json(t.to_json()) == t
