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
