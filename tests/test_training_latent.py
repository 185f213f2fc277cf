import numpy as np
import pytest

from infogan.contract import (
    CATEGORICAL,
    CONTINUOUS,
    NOISE,
    InfoganError,
    LatentTemplate,
    sample_latent,
    traversal_latent,
)


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


# ---------------------------------------------------------------- the Fig. 2 traversal

ODD = LatentTemplate(categorical=(4,), continuous=((-1, 1), (0, 3), (-2, 2)), noise_dim=5, noise_scale=0.5)


def rows_of(z, rows, cols):
    return {k: v.reshape(rows, cols, -1) for k, v in z.items()}


def test_traversal_has_a_row_per_category_and_sweeps_one_code_along_each_row():
    values = np.array([-2.0, -0.5, 0.25, 3.0])
    z = traversal_latent(ODD, 1, values, np.random.default_rng(0), continuous=[0.5, 9.0, -1.5])
    assert set(z) == {NOISE, CATEGORICAL, CONTINUOUS}
    assert z[NOISE].shape == (16, 5) and z[CATEGORICAL].shape == (16, 4) and z[CONTINUOUS].shape == (16, 3)
    assert all(v.dtype == np.float32 for v in z.values())
    r = rows_of(z, 4, 4)
    assert r[CATEGORICAL].argmax(2).tolist() == [[c] * 4 for c in range(4)]  # one category per row, 0..K-1
    assert (r[CATEGORICAL].sum(2) == 1).all()
    assert (r[CONTINUOUS][:, :, 1] == values.astype(np.float32)).all()  # the swept column is the values, every row
    assert (r[CONTINUOUS][:, :, 0] == 0.5).all() and (r[CONTINUOUS][:, :, 2] == -1.5).all()  # the others fixed
    assert (r[NOISE] == r[NOISE][:, :1]).all()  # noise constant along each row...
    assert len({row[0].tobytes() for row in r[NOISE]}) == 4  # ...and its own in each row
    assert np.abs(z[NOISE]).max() <= 0.5


def test_traversal_rows_follow_the_given_categories_and_other_codes_default_to_zero():
    z = traversal_latent(ODD, 2, [0.0, 1.0], np.random.default_rng(1), categories=[3, 0, 3])
    r = rows_of(z, 3, 2)
    assert r[CATEGORICAL].argmax(2)[:, 0].tolist() == [3, 0, 3]
    assert (r[CONTINUOUS][:, :, :2] == 0).all() and r[CONTINUOUS][:, :, 2].tolist() == [[0.0, 1.0]] * 3


def test_traversal_noise_is_sample_latents_first_rows_or_one_shared_vector():
    rng = lambda: np.random.default_rng(7)  # noqa: E731
    per_row = traversal_latent(ODD, 0, [0.0, 1.0, 2.0], rng())
    assert np.array_equal(per_row[NOISE][::3], sample_latent(ODD, 4, rng())[NOISE])
    shared = traversal_latent(ODD, 0, [0.0, 1.0, 2.0], rng(), shared_noise=True)
    assert (shared[NOISE] == per_row[NOISE][0]).all()
    assert np.array_equal(shared[CATEGORICAL], per_row[CATEGORICAL])


def test_traversal_without_a_code_repeats_its_columns():
    t = LatentTemplate(continuous=(), noise_dim=3)
    z = traversal_latent(t, None, [-1.0, 1.0], np.random.default_rng(0))
    assert z[CONTINUOUS].shape == (20, 0) and z[NOISE].shape == (20, 3)


@pytest.mark.parametrize("code,values,kwargs,needle", [
    (3, [0.0], {}, r"code=3 is out of range: this model has continuous codes 0\.\.2"),
    (-1, [0.0], {}, "code=-1 is out of range"),
    (0, [], {}, "values=.* are invalid"),
    (0, [[0.0, 1.0]], {}, "values=.* are invalid"),
    (0, [0.0, float("inf")], {}, "values=.* are invalid"),
    (0, [0.0], {"categories": [4]}, r"category=4 is out of range: allowed are 0\.\.3"),
    (0, [0.0], {"categories": []}, "categories=.* needs at least 1 row"),
    (0, [0.0], {"continuous": [0.0, 1.0]}, "continuous=.* give 3 finite numbers"),
    (0, [0.0], {"continuous": [0.0, 1.0, float("nan")]}, "continuous=.* give 3 finite numbers"),
])
def test_bad_traversals_are_refused_with_one_line(code, values, kwargs, needle):
    with pytest.raises(InfoganError, match=needle) as e:
        traversal_latent(ODD, code, values, np.random.default_rng(0), **kwargs)
    assert "\n" not in str(e.value)
