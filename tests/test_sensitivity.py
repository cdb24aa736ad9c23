import math

import torch
from torch import nn

import pytest

from robustgen.measures.sensitivity import (activation_codes, anchor_indices, closed_length, closed_transitions, ellipses,
                                   jacobian_norms, region_slice, trajectory_anchors, trajectory_sensitivity)


def _net(seed=0, d=6, h=5, c=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, c)).double()


def test_jacobian_norm_matches_central_finite_differences():
    model = _net()
    x = torch.randn(7, 6, dtype=torch.float64)
    eps = 1e-6
    probabilities = lambda z: torch.softmax(model(z), dim=1)
    expected = []
    for point in x:
        columns = []
        for j in range(6):
            step = torch.zeros(6, dtype=torch.float64)
            step[j] = eps
            columns.append((probabilities((point + step)[None]) - probabilities((point - step)[None]))[0] / (2 * eps))
        expected.append(torch.stack(columns, dim=1).norm())   # Frobenius over (classes, inputs)
    torch.testing.assert_close(jacobian_norms(model, x, chunk=3), torch.stack(expected), rtol=1e-6, atol=1e-9)


def test_jacobian_norm_of_a_linear_softmax_model_has_the_closed_form():
    torch.manual_seed(1)
    model = nn.Linear(5, 3).double()
    x = torch.randn(9, 5, dtype=torch.float64)
    p = torch.softmax(model(x), dim=1)
    # J = (diag(p) − p pᵀ) W
    jac = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) @ model.weight
    expected = jac.pow(2).sum(dim=(1, 2)).sqrt()
    got = jacobian_norms(model, x)
    torch.testing.assert_close(got, expected.detach())
    # not a norm over one axis of the (batch, classes, inputs) tensor
    assert not torch.allclose(got, jac.norm(dim=2).max(dim=1).values.detach())


def _hand_built():
    """2-D input; layer 1 units: x, y, x − 0.5; layer 2 unit: relu(x) − 0.5 (active iff x > 0.5)."""
    first = nn.Linear(2, 3).double()
    second = nn.Linear(3, 1).double()
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
        first.bias.copy_(torch.tensor([0.0, 0.0, -0.5]))
        second.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
        second.bias.copy_(torch.tensor([-0.5]))
    return nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), nn.Linear(1, 2).double())


def test_transitions_along_the_unit_circle_are_exact():
    model = _hand_built()
    # anchors on the unit circle at 0°, 120°, 240°: the ellipse through them is the unit circle itself
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=torch.float64)
    anchors = torch.stack([angles.cos(), angles.sin()], dim=1)[None]
    points = ellipses(anchors, k=997)
    torch.testing.assert_close(points.norm(dim=-1), torch.ones(1, 997, dtype=torch.float64))
    codes = activation_codes(model, points[0])
    assert codes.shape == (997, 4)
    # x flips at 90° and 270°, y at 0° and 180°, x − 0.5 and relu(x) − 0.5 each at ±60°: 8 in all
    assert closed_transitions(codes[None]).item() == 8
    # the inscribed regular 997-gon has perimeter 2k·sin(π/k)
    assert abs(closed_length(points).item() - 2 * 997 * math.sin(math.pi / 997)) < 1e-9
    result = trajectory_sensitivity(model, anchors, k=997, jacobian_every=10)
    assert result["transitions"].item() == 8
    assert abs(result["transition_density"].item() - 8 / math.tau) < 1e-4


def test_ellipse_passes_through_its_anchors():
    anchors = torch.randn(4, 3, 10, dtype=torch.float64)
    points = ellipses(anchors, k=30)
    for i, index in enumerate((0, 10, 20)):
        torch.testing.assert_close(points[:, index], anchors[:, i])


def test_anchor_kinds():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
    g = torch.Generator().manual_seed(0)
    different = anchor_indices(labels, "different_class", 50, g)
    assert all(len(set(labels[row].tolist())) == 3 for row in different)
    same = anchor_indices(labels, "same_class", 50, g)
    assert all(len(set(labels[row].tolist())) == 1 and len(set(row.tolist())) == 3 for row in same)
    assert 9 not in same  # class 3 has a single point
    x = torch.rand(10, 4)
    random = trajectory_anchors("random", x, labels, 5, g)
    assert random.shape == (5, 3, 4) and (random >= 0).all() and (random <= 1).all()


def test_region_slice_finds_the_boundaries_of_a_hand_built_network():
    model = _hand_built()
    # anchors (0,0), (1,0), (0,1): the plane is the input plane itself, s = x, t = y over [-0.5, 1.5]²
    anchors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    boundary, regions, corners = region_slice(model, anchors, resolution=40, margin=0.5, last_layer_only=False)
    # boundaries x = 0, y = 0 and x = 0.5 (two units share it): 3 × 2 = 6 activation patterns
    assert regions == 6 and corners[1] == (1.0, 0.0)
    # pixel i sits at -0.5 + 2i/39: x = 0 between columns 9 and 10, x = 0.5 between 19 and 20 (rows alike)
    assert boundary[:, 9].all() and boundary[:, 19].all() and boundary[9, :].all()
    assert boundary[:, [c for c in range(40) if c not in (9, 19)]].sum() == 38  # row 9 only, elsewhere
    assert not boundary[30, 30] and not boundary[5, 5]
    # the last hidden layer alone (relu(x) − 0.5) only switches at x = 0.5
    boundary, regions, _ = region_slice(model, anchors, resolution=40, margin=0.5)
    assert regions == 2 and boundary.any(dim=0).nonzero().squeeze(1).tolist() == [19]


def test_sensitivity_summary_and_trajectory_tables():
    import pandas as pd

    from robustgen.settings import Bootstrap
    from robustgen.stages.sensitivity import summary, trajectory_table

    rows = []
    for seed in (0, 1):
        for checkpoint, step, scale in (("memorised", 10, 10.0), ("generalised", 90, 1.0)):
            for item in range(4):
                rows.append(dict(dataset="d", init_scale=8.0, weight_decay=0.01, seed=seed, checkpoint=checkpoint,
                                 step=step, where="test_points", item=item, jacobian_norm=scale * (item + 1)))
                rows.append(dict(dataset="d", init_scale=8.0, weight_decay=0.01, seed=seed, checkpoint=checkpoint,
                                 step=step, where="same_class", item=item, jacobian_norm=scale,
                                 transitions=2.0 * item, length=2.0, transition_density=float(item)))
    items = pd.DataFrame(rows)
    runs = pd.DataFrame([dict(dataset="d", init_scale=8.0, weight_decay=0.01, seed=s, status="generalised")
                         for s in (0, 1)])
    table = summary(items, Bootstrap(resamples=200, seed=0), runs)
    run = table[(table.scope == "run") & (table.seed == 0) & (table.checkpoint == "memorised")
                & (table["where"] == "test_points")]
    assert run.metric.tolist() == ["jacobian_norm"]                # only the metric measured there
    assert run.iloc[0]["mean"] == 25.0 and run.iloc[0].n == 4
    assert run.iloc[0].se == pytest.approx(10 * (5 / 3) ** 0.5 / 2)  # std of 10, 20, 30, 40 over √4
    assert run.iloc[0].status == "generalised" and run.iloc[0].ci_low < 25.0 < run.iloc[0].ci_high
    group = table[(table.scope == "group") & (table.checkpoint == "generalised") & (table.metric == "transition_density")]
    assert group.iloc[0].n == 8 and group.iloc[0]["mean"] == 1.5 and group.iloc[0].n_seeds == 2
    # the two seeds agree exactly: the standard error over seeds is 0, whatever the spread of the items
    assert group.iloc[0].se == 0.0
    assert table.checkpoint.tolist().index("generalised") > table.checkpoint.tolist().index("memorised")
    metrics = {("d", 8.0, 0.01, s): pd.DataFrame(dict(step=[10, 90], train_acc=[1.0, 1.0], test_acc=[0.2, 0.9]))
               for s in (0, 1)}
    traj = trajectory_table(items, metrics)
    assert set(traj.test_acc) == {0.2, 0.9} and len(traj) == 2 * 2 * (1 + 3)


def test_jacobian_sample_is_centred_and_avoids_the_anchors():
    from robustgen.measures.sensitivity import jacobian_sample

    sample = jacobian_sample(256, 8)
    assert sample.tolist() == list(range(4, 256, 8))
    anchors = torch.tensor([0.0, 256 / 3, 2 * 256 / 3])
    assert (sample[:, None].double() - anchors).abs().min() >= 1.3   # no anchor (training point) is sampled
    assert jacobian_sample(10, 1).tolist() == list(range(10))        # every point: the plain mean


def test_projected_jacobian_norm_is_unbiased_for_the_squared_frobenius_norm():
    """E[C·‖vᵀJ‖²] = ‖J‖²_F for v uniform on the unit sphere: on a linear map J = W, averaged over many draws."""
    from robustgen.measures.sensitivity import projected_jacobian_norms

    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4).double()
    x = torch.randn(20000, 6, dtype=torch.float64, requires_grad=True)
    estimate = projected_jacobian_norms(model(x), x, torch.Generator().manual_seed(1))
    exact = model.weight.detach().square().sum()
    assert abs(estimate.square().mean() - exact) < 0.03 * exact
    assert estimate.requires_grad  # training differentiates through it
