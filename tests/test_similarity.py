"""CKA against reference implementations written here from the definitions, and its known invariances."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from robustgen.measures.similarity import (Representation, StreamedCka, cka_from_grams, cka_matrix, debiased_linear_cka,
                                           gram_linear, gram_rbf, hsic, hsic_unbiased, layer_activations, linear_cka,
                                           minibatch_cka, minibatches, rbf_cka)


def _data(n=60, p=12, q=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=torch.float64)
    y = x @ torch.randn(p, q, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, q, generator=g, dtype=torch.float64)
    return x, y


def minibatch_two_passes(x, y):
    """Minibatch CKA in batches of 16 over two passes (the second in a random order)."""
    return minibatch_cka(x, y, batch_size=16, passes=2)


# --- references, straight from the definitions -------------------------------------------------------------

def ref_hsic_biased(k, l):
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def ref_hsic_unbiased(k, l):
    """Song et al. 2012's U-statistic of order 4, summed over every ordered quadruple of distinct indices."""
    n = len(k)
    total = 0.0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
    return total / (n * (n - 1) * (n - 2) * (n - 3))


def ref_rbf(x, threshold):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    sigma = threshold * np.median(d[~np.eye(len(x), dtype=bool)])
    return np.exp(-d**2 / (2 * sigma**2))


def test_linear_cka_equals_the_feature_space_formula_and_the_hsic_form():
    x, y = _data()
    xc, yc = (x - x.mean(0)).numpy(), (y - y.mean(0)).numpy()
    feature_form = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    k, l = x.numpy() @ x.numpy().T, y.numpy() @ y.numpy().T
    hsic_form = ref_hsic_biased(k, l) / np.sqrt(ref_hsic_biased(k, k) * ref_hsic_biased(l, l))
    assert linear_cka(x, y).item() == pytest.approx(feature_form, rel=1e-10)
    assert cka_from_grams(gram_linear(x), gram_linear(y)).item() == pytest.approx(hsic_form, rel=1e-10)
    assert feature_form == pytest.approx(hsic_form, rel=1e-10)


def test_hsic_estimators_match_their_definitions():
    x, y = _data(n=8, p=3, q=2, seed=1)
    k, l = gram_linear(x), gram_linear(y)
    assert hsic(k, l).item() == pytest.approx(ref_hsic_biased(k.numpy(), l.numpy()), rel=1e-10)
    assert hsic_unbiased(k, l).item() == pytest.approx(ref_hsic_unbiased(k.numpy(), l.numpy()), rel=1e-9)
    kr, lr = gram_rbf(x, 0.7), gram_rbf(y, 0.7)
    np.testing.assert_allclose(kr.numpy(), ref_rbf(x.numpy(), 0.7), rtol=1e-12)
    assert hsic_unbiased(kr, lr).item() == pytest.approx(ref_hsic_unbiased(kr.numpy(), lr.numpy()), rel=1e-9)


@pytest.mark.parametrize("cka", [linear_cka, debiased_linear_cka, rbf_cka, minibatch_two_passes])
def test_cka_of_a_representation_with_itself_is_one(cka):
    x, _ = _data()
    assert cka(x, x).item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("cka", [linear_cka, debiased_linear_cka, rbf_cka, minibatch_two_passes])
def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling(cka):
    x, y = _data()
    q, _ = torch.linalg.qr(torch.randn(9, 9, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    reference = cka(x, y).item()
    assert cka(x, y @ q).item() == pytest.approx(reference, rel=1e-9)
    assert cka(3.7 * x, y).item() == pytest.approx(reference, rel=1e-9)
    assert cka(x, 0.01 * y @ q).item() == pytest.approx(reference, rel=1e-9)
    # but not to an arbitrary invertible linear map (CKA is not CCA)
    a = torch.randn(12, 12, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert abs(cka(x @ torch.diag(torch.linspace(0.1, 10, 12, dtype=torch.float64)) @ a, y).item() - reference) > 1e-3


def test_debiased_and_minibatch_estimates_agree_with_the_full_estimate_on_large_samples():
    x, y = _data(n=4000, p=20, q=15, seed=2)
    full = linear_cka(x, y).item()
    debiased = debiased_linear_cka(x, y).item()
    minibatch = minibatch_cka(x, y, batch_size=400).item()
    assert debiased == pytest.approx(full, abs=0.01)
    assert minibatch == pytest.approx(debiased, abs=0.01)


def test_debiased_cka_of_independent_features_is_near_zero():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 200, generator=g, dtype=torch.float64)
    y = torch.randn(500, 200, generator=g, dtype=torch.float64)
    assert abs(debiased_linear_cka(x, y).item()) < 0.02
    assert linear_cka(x, y).item() > 0.2   # the biased estimate is far from 0 when features ≫ examples / 3


def test_cka_matrix_is_every_pairwise_cka():
    x, y = _data()
    grams = [gram_linear(x), gram_linear(y), gram_linear(x[:, :3])]
    matrix = cka_matrix(grams, grams[:2], debiased=False)
    assert matrix.shape == (3, 2)
    for i, k in enumerate(grams):
        for j, l in enumerate(grams[:2]):
            assert matrix[i, j].item() == pytest.approx(cka_from_grams(k, l).item(), rel=1e-12)
    torch.testing.assert_close(torch.diag(cka_matrix(grams, grams, debiased=True)), torch.ones(3, dtype=torch.float64))


def test_layer_activations_by_hooks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.randn(10, 6)
    acts = layer_activations(model, x)
    assert list(acts) == ["input", "linear1", "relu1", "linear2", "relu2", "linear3"]
    assert [a.shape[1] for a in acts.values()] == [6, 5, 5, 4, 4, 3]
    torch.testing.assert_close(acts["relu1"], torch.relu(acts["linear1"]))
    torch.testing.assert_close(acts["linear3"], model(x))
    assert not model[0]._forward_hooks  # hooks removed


def test_minibatch_cka_sums_unbiased_hsic_over_batches():
    x, y = _data(n=40, p=5, q=4, seed=4)
    batches = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 40, 10)]
    kl = sum(ref_hsic_unbiased_fast(gram_linear(a), gram_linear(b)) for a, b in batches)
    kk = sum(ref_hsic_unbiased_fast(gram_linear(a), gram_linear(a)) for a, _ in batches)
    ll = sum(ref_hsic_unbiased_fast(gram_linear(b), gram_linear(b)) for _, b in batches)
    assert minibatch_cka(x, y, batch_size=10).item() == pytest.approx(kl / np.sqrt(kk * ll), rel=1e-10)


def test_minibatches_cover_the_examples_once_per_pass_the_first_in_order():
    batches = minibatches(12, 4, passes=3)
    assert len(batches) == 9 and all(len(b) == 4 for b in batches)
    assert torch.equal(torch.cat(batches[:3]), torch.arange(12))  # the first pass: the examples' own order
    for later in (batches[3:6], batches[6:]):  # each later pass: every example once, in another order
        order = torch.cat(later)
        assert torch.equal(order.sort().values, torch.arange(12)) and not torch.equal(order, torch.arange(12))
    assert not torch.equal(torch.cat(batches[3:6]), torch.cat(batches[6:]))
    assert all(torch.equal(a, b) for a, b in zip(batches, minibatches(12, 4, passes=3)))  # drawn from the pass number
    # a short last batch is kept where the unbiased HSIC is defined on it (4 examples), dropped where not
    assert [len(b) for b in minibatches(13, 4)] == [4, 4, 4]
    assert [len(b) for b in minibatches(16, 6)] == [6, 6, 4]
    with pytest.raises(ValueError, match="at least 4"):
        minibatches(12, 3)


def test_minibatch_cka_over_passes_sums_every_passs_batches():
    x, y = _data(n=40, p=5, q=4, seed=4)
    second = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    batches = [torch.arange(i, i + 10) for i in range(0, 40, 10)] + [second[i:i + 10] for i in range(0, 40, 10)]
    kl = sum(ref_hsic_unbiased_fast(gram_linear(x[b]), gram_linear(y[b])) for b in batches)
    kk = sum(ref_hsic_unbiased_fast(gram_linear(x[b]), gram_linear(x[b])) for b in batches)
    ll = sum(ref_hsic_unbiased_fast(gram_linear(y[b]), gram_linear(y[b])) for b in batches)
    assert minibatch_cka(x, y, batch_size=10, passes=2).item() == pytest.approx(kl / np.sqrt(kk * ll), rel=1e-10)
    assert minibatch_cka(x, y, batch_size=10, passes=2).item() != pytest.approx(
        minibatch_cka(x, y, batch_size=10).item(), abs=1e-6)


def test_minibatch_cka_needs_no_centring():
    # unbiased HSIC is unchanged by a constant added to every example's features (Cianfarani et al. do not centre)
    x, y = _data()
    shift = 5 * torch.randn(12, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert minibatch_two_passes(x + shift, y).item() == pytest.approx(minibatch_two_passes(x, y).item(), rel=1e-9)
    assert debiased_linear_cka(x + shift, y).item() == pytest.approx(debiased_linear_cka(x, y).item(), rel=1e-9)


def test_streamed_cka_equals_the_minibatch_representation_and_on_one_batch_the_debiased_cka():
    # two "networks" of three layers on the same 40 examples; streamed batch by batch, as the stages do
    x, y = _data(n=40, p=6, q=5, seed=8)
    nets = {"a": [x, x.relu(), y], "b": [y, y.tanh(), x[:, :3]]}
    pairs = [("a", "b"), ("b", "b")]
    streamed = StreamedCka(pairs)
    for batch in minibatches(40, 12, passes=2):
        streamed.add({key: [layer[batch] for layer in layers] for key, layers in nets.items()})
    represented = {key: Representation(layers, batch_size=12, passes=2) for key, layers in nets.items()}
    for a, b in pairs:
        torch.testing.assert_close(streamed.cka(a, b), represented[a].cka(represented[b]), rtol=1e-12, atol=1e-12)
    assert torch.diagonal(streamed.cka("b", "b")).tolist() == pytest.approx([1.0] * 3, abs=1e-12)
    one = StreamedCka(pairs)
    one.add(nets)
    assert one.cka("a", "b")[0, 0].item() == pytest.approx(debiased_linear_cka(x, y).item(), abs=1e-12)
    assert one.cka("a", "b")[1, 0].item() == pytest.approx(debiased_linear_cka(x.relu(), y).item(), abs=1e-12)


def ref_hsic_unbiased_fast(k, l):
    """Song et al.'s closed form, written out with explicit zero-diagonal copies and ones vectors."""
    k, l = k.numpy().copy(), l.numpy().copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    n, one = len(k), np.ones(len(k))
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))


def test_a_representation_from_given_gram_matrices_equals_the_one_from_activations():
    # the representation stage computes linear Gram matrices once for the biased and the debiased estimator
    from robustgen.measures.similarity import Representation

    x, y = _data(n=40)
    for estimator in ("linear", "debiased"):
        given = Representation([x, y], estimator=estimator, grams=[gram_linear(x), gram_linear(y)])
        own = Representation([x, y], estimator=estimator)
        torch.testing.assert_close(given.cka(own), own.cka(own), rtol=1e-12, atol=1e-12)
    debiased = Representation([x, y], estimator="debiased", grams=[gram_linear(x), gram_linear(y)]).cka(
        Representation([x, y], estimator="debiased"))
    assert debiased[0, 1].item() == pytest.approx(debiased_linear_cka(x, y).item(), abs=1e-12)
    assert debiased[0, 1].item() != pytest.approx(linear_cka(x, y).item(), abs=1e-4)
