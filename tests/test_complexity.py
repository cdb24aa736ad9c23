"""Local complexity on cases with known answers: one ReLU plane crossing the frame or not, a frame that grows."""

import pytest
import torch
from torch import nn

from robustgen.measures.complexity import frame_directions, local_complexity
from robustgen.models import mlp


def test_frame_directions_are_orthonormal_and_reproducible():
    v = frame_directions(30, 8, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(v @ v.T, torch.eye(8, dtype=torch.float64), atol=1e-12)
    assert torch.equal(v, frame_directions(30, 8, torch.Generator().manual_seed(0), dtype=torch.float64))
    with pytest.raises(ValueError, match="1 to 30"):
        frame_directions(30, 31, torch.Generator())


def test_one_relu_plane_counts_where_it_crosses_the_frame():
    g = torch.Generator().manual_seed(1)
    layer = nn.Linear(5, 1).double()
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(1, 2).double())
    x = torch.randn(200, 5, generator=g, dtype=torch.float64)
    v = frame_directions(5, 3, g, dtype=torch.float64)
    radii = [0.05, 0.3, 1.0, 3.0]
    lc = local_complexity(model, x, v, radii, chunk=17)
    assert lc.shape == (200, 4, 1)
    # the vertices' pre-activations are w·x + b ± r·w·v_p: the sign changes iff r·max_p |w·v_p| > |w·x + b|
    distance = (layer(x)[:, 0]).abs().detach()
    reach = (v @ layer.weight[0].detach()).abs().max()
    expected = torch.stack([(r * reach > distance).long() for r in radii], dim=1)
    assert torch.equal(lc[:, :, 0], expected)
    assert 0 < expected[:, 1].sum() < 200  # the case holds both answers


def test_a_growing_frame_never_loses_a_first_layer_boundary_and_finally_holds_them_all():
    torch.manual_seed(2)
    model = mlp(10, 16, 3, 4).double()
    x = torch.randn(50, 10, dtype=torch.float64)
    v = frame_directions(10, 10, torch.Generator().manual_seed(3), dtype=torch.float64)  # a full basis
    lc = local_complexity(model, x, v, [1e-9, 0.1, 1.0, 10.0, 1e4])
    assert lc.shape == (50, 5, 2)
    first = lc[:, :, 0]
    assert (first[:, 1:] >= first[:, :-1]).all()
    assert (first[:, 0] == 0).all() and (first[:, -1] == 16).all()  # none at a point, every plane far out


def test_the_first_layer_shortcut_counts_what_the_frame_points_give():
    """The affine first layer evaluated once per point and direction gives the counts of running every frame
    point through the whole network (the network behind an Identity takes the general path)."""
    torch.manual_seed(4)
    model = mlp(12, 20, 4, 3).double()
    x = torch.rand(40, 12, dtype=torch.float64)
    v = frame_directions(12, 5, torch.Generator().manual_seed(5), dtype=torch.float64)
    radii = [0.01, 0.1, 1.0]
    fast = local_complexity(model, x, v, radii, chunk=7)
    general = local_complexity(nn.Sequential(nn.Identity(), *model), x, v, radii)
    assert fast.shape == general.shape == (40, 3, 3)
    assert torch.equal(fast, general)
    assert 0 < fast[:, 1].sum() < fast[:, 2].sum()  # boundaries found, more with a larger frame
    with_output = local_complexity(model, x, v, radii, chunk=7, output=True)
    assert torch.equal(with_output, local_complexity(nn.Sequential(nn.Identity(), *model), x, v, radii, output=True))
    assert torch.equal(with_output[..., :-1], fast) and with_output.shape == (40, 3, 4)


def test_the_output_layer_count_adds_exactly_the_output_units_that_cross_the_frame():
    """Hidden units biased far positive never change sign; outputs 0 and 1 are zero at the origin (x_0 and x_1
    planes) and output 2 never is: around the origin the reference count (output included) is the hidden
    count + 2, far from both planes + 0, and the hidden count is the same with and without the option."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.fill_(10.0)
        model[2].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
        model[2].bias.copy_(torch.tensor([-10.0, -10.0, 100.0]))
    x = torch.tensor([[0.0, 0.0], [5.0, 5.0]], dtype=torch.float64)
    v = frame_directions(2, 2, torch.Generator().manual_seed(0), dtype=torch.float64)
    hidden = local_complexity(model, x, v, [0.1])
    both = local_complexity(model, x, v, [0.1], output=True)
    assert hidden.shape == (2, 1, 1) and both.shape == (2, 1, 2)
    assert torch.equal(both[..., :1], hidden) and (hidden == 0).all()
    assert both[:, 0, 1].tolist() == [2, 0]
    assert (both.sum(-1) - hidden.sum(-1)).flatten().tolist() == [2, 0]
