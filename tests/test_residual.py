"""The papers' residual networks and training recipe (issue 27): sizes against the published parameter counts,
normalisation inside the network, what the measures count in a network with BatchNorm and skips, the CIFAR
augmentation, the learning-rate schedules and GradAlign's regulariser."""

import math

import pytest
import torch
from torch import nn

from robustgen.data import crop_flip
from robustgen.measures.attacks import alignment_penalty, single_step
from robustgen.measures.sensitivity import activation_codes, hidden_preactivations, jacobian_norms, region_slice
from robustgen.measures.similarity import hidden_and_output, layer_activations
from robustgen.models import architecture_spec, build, num_parameters, output_layer, weight_norms
from robustgen.train import lr_schedule, make_optimizer

CIFAR = [3, 32, 32]


@pytest.mark.parametrize("name, published, tolerance", [
    ("resnet20_w16", 0.27e6, 0.005e6),  # He et al. 2016, Table 6 (their shortcuts add no parameters; ours 1×1)
    ("resnet56_w16", 0.85e6, 0.01e6),
    # option A, exactly: 0.27 M, 0.85 M, 1.7 M counted (stem 464, per extra block pair 194 432, head 650)
    ("resnet20_w16_a", 269_722, 0),
    ("resnet56_w16_a", 853_018, 0),
    ("resnet110_w16_a", 1_727_962, 0),
    ("wrn28_4", 5.8e6, 0.1e6),  # Zagoruyko & Komodakis 2016, Table 1 ("WRN-28-4"... rounded)
    ("preact_resnet18", 11.17e6, 0.01e6),  # ResNet-18 for CIFAR (He et al. 2016b; Wong et al.'s network)
])
def test_residual_networks_have_the_published_sizes(name, published, tolerance):
    net = build(architecture_spec(name, CIFAR, 10))
    assert abs(num_parameters(net) - published) <= tolerance


def test_block_counts_follow_the_depth():
    blocks = lambda name: sum(type(m).__name__.endswith("Block") for m in build(architecture_spec(name, CIFAR, 10)).modules())  # noqa: E731
    assert blocks("resnet56_w16") == 27 and blocks("resnet20_w4") == 9  # (depth − 2) / 2
    assert blocks("wrn28_4_w4") == 12 and blocks("preact_resnet18_w4") == 8  # (depth − 4) / 2; 2 per stage
    with pytest.raises(ValueError, match="6n \\+ 2"):
        architecture_spec("resnet21_w16", CIFAR, 10)
    with pytest.raises(ValueError, match="allowed"):
        architecture_spec("resnet18", CIFAR, 10)


def test_normalisation_is_inside_the_network_so_radii_stay_in_pixels():
    torch.manual_seed(0)
    mean, std = [0.5, 0.4, 0.3], [0.25, 0.2, 0.1]
    normalised = build(architecture_spec("resnet8_w4", CIFAR, 10, mean, std)).eval()
    plain = build(architecture_spec("resnet8_w4", CIFAR, 10)).eval()
    plain.load_state_dict({k: v for k, v in normalised.state_dict().items() if not k.startswith("1.")}, strict=False)
    x = torch.rand(4, 3 * 32 * 32)
    scaled = ((x.view(4, 3, -1) - torch.tensor(mean)[:, None]) / torch.tensor(std)[:, None]).view(4, -1)
    torch.testing.assert_close(normalised(x), plain(scaled), rtol=1e-5, atol=1e-5)


def _trained_like(name, shape=(1, 12, 12), seed=0):
    """A residual network in eval mode whose BatchNorm statistics are not the identity (as after training)."""
    torch.manual_seed(seed)
    net = build(architecture_spec(name, list(shape), 10))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def test_option_a_shortcut_is_the_subsampled_input_padded_with_zero_channels():
    net = build(architecture_spec("resnet8_w4_a", [1, 12, 12], 10))
    shortcuts = [m.shortcut for m in net.modules() if type(m).__name__ == "BasicBlock"]
    assert [type(s).__name__ for s in shortcuts] == ["Identity", "ZeroPadShortcut", "ZeroPadShortcut"]
    assert not any(p.numel() for s in shortcuts for p in s.parameters())
    x = torch.randn(2, 4, 12, 12)
    out = shortcuts[1](x)  # 4 → 8 channels, stride 2: two zero channels on each side
    assert out.shape == (2, 8, 6, 6)
    assert torch.equal(out[:, 2:6], x[:, :, ::2, ::2])
    assert not out[:, :2].any() and not out[:, 6:].any()


@pytest.mark.parametrize("name", ["resnet8_w4", "resnet8_w4_a", "preact_resnet18_w2", "wrn10_1_w4"])
def test_transitions_count_the_input_of_every_relu_module(name):
    net = _trained_like(name)
    x = torch.rand(5, 144)
    seen = []
    handles = [m.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].flatten(1)))
               for m in net.modules() if isinstance(m, nn.ReLU)]
    net(x)
    for h in handles:
        h.remove()
    found = hidden_preactivations(net, x, output=True)
    assert len(found) == len(seen) + 1 and len(seen) == sum(isinstance(m, nn.ReLU) for m in net.modules())
    for got, want in zip(found, seen):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(found[-1], net(x))
    codes = activation_codes(net, x)
    assert codes.shape == (5, sum(s.shape[1] for s in seen))
    # the region codes are those of the ReLUs' inputs: a point's code changes only where one crosses zero
    assert torch.equal(codes, torch.cat([s > 0 for s in seen], dim=1))


def test_a_residual_relu_network_is_piecewise_linear_in_eval_mode():
    """Between two nearby points with the same activation code the network is affine (BatchNorm in eval mode
    is an affine map; a skip adds its input): the midpoint's output is the mean of theirs."""
    net = _trained_like("resnet8_w4").double()
    x = torch.rand(1, 144, dtype=torch.float64)
    d = 1e-7 * torch.randn(1, 144, dtype=torch.float64)
    assert torch.equal(activation_codes(net, x - d), activation_codes(net, x + d))
    torch.testing.assert_close(net(x), (net(x - d) + net(x + d)) / 2, rtol=0, atol=1e-12)


def test_jacobian_norm_of_a_residual_network_equals_the_full_jacobian():
    net = _trained_like("resnet8_w4").double()
    x = torch.rand(2, 144, dtype=torch.float64)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: net(v[None]).softmax(1)[0], xi) for xi in x])
    torch.testing.assert_close(jacobian_norms(net, x), jac.flatten(1).norm(dim=1), rtol=1e-6, atol=1e-9)


def test_region_slice_of_a_residual_network_codes_its_last_relu():
    net = _trained_like("resnet8_w4")
    anchors = torch.rand(3, 144)
    boundary, regions, _ = region_slice(net, anchors, resolution=9)
    last = hidden_preactivations(net, anchors)[-1]
    assert boundary.shape == (9, 9) and 1 <= regions <= 81 and last.shape[1] == 16 * 3 * 3


def test_every_layer_type_is_available_to_the_similarity_stage():
    net = _trained_like("resnet8_w4")
    x = torch.rand(3, 144)
    acts = layer_activations(net, x)
    kinds = {name.rstrip("0123456789") for name in acts}
    assert kinds == {"input", "conv", "norm", "relu", "pool", "linear"}
    assert list(acts)[-1] == "linear1" and list(acts)[-2] == "pool1"
    torch.testing.assert_close(acts["linear1"], net(x))
    # resnet8: stem conv + 3 blocks of 2 convs + 2 projection shortcuts (stages 2, 3), each followed by a norm
    assert sum(k.startswith("conv") for k in acts) == 9 and sum(k.startswith("norm") for k in acts) == 9
    compared = hidden_and_output(net, torch.rand(3, 144))
    assert list(compared)[-1] == "output" and all(k.startswith("relu") for k in list(compared)[:-1])
    assert output_layer(net) is [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    last = output_layer(net)
    norms = weight_norms(net)
    torch.testing.assert_close(norms[1], torch.cat([last.weight.flatten(), last.bias]).norm())


def test_crop_flip_moves_each_image_by_a_crop_of_its_padded_copy():
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).view(2, -1) + 1
    out = crop_flip(x, [2, 5, 5], torch.Generator().manual_seed(0), padding=2)
    padded = nn.functional.pad(x.view(2, 2, 5, 5), (2,) * 4)
    for image, original in zip(out.view(2, 2, 5, 5), padded):
        candidates = [original[:, r:r + 5, c:c + 5] for r in range(5) for c in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(image, c) for c in candidates)
    # without padding an image is itself or its mirror image, each about half the time
    many = crop_flip(x[:1].repeat(400, 1), [2, 5, 5], torch.Generator().manual_seed(1), padding=0).view(400, 2, 5, 5)
    same = (many == x[0].view(2, 5, 5)).flatten(1).all(dim=1)
    mirrored = (many == x[0].view(2, 5, 5).flip(-1)).flatten(1).all(dim=1)
    assert bool((same ^ mirrored).all()) and 160 < int(mirrored.sum()) < 240


def test_learning_rate_schedules_known_values():
    cyclic = lr_schedule("cyclic", 0.2, 100, peak=0.4)
    assert cyclic(0) == pytest.approx(0.2 * 0.5 / 40) and max(cyclic(s) for s in range(100)) <= 0.2
    assert cyclic(39) == pytest.approx(0.2 * 39.5 / 40) and cyclic(99) == pytest.approx(0.2 * 0.5 / 60)
    piecewise = lr_schedule("piecewise", 0.1, 200, milestones=[0.5, 0.75])
    assert [piecewise(s) for s in (0, 99, 100, 149, 150, 199)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cosine = lr_schedule("cosine", 0.1, 100)
    assert cosine(0) == 0.1 and cosine(50) == pytest.approx(0.05) and cosine(100) == pytest.approx(0.0, abs=1e-12)
    assert lr_schedule("constant", 0.3, 10)(7) == 0.3
    with pytest.raises(ValueError, match="constant, cyclic, piecewise, cosine"):
        lr_schedule("step", 0.1, 10)


def test_sgd_recipe_is_momentum_nesterov_and_l2_weight_decay():
    w = nn.Parameter(torch.tensor([1.0]))
    opt = make_optimizer("sgd", [w], lr=0.1, device="cpu", momentum=0.9, nesterov=True, weight_decay=0.5)
    w.grad = torch.tensor([2.0])
    opt.step()
    # g = 2 + 0.5·1 = 2.5; buffer b = g; Nesterov: w −= lr·(g + 0.9·b) = 0.1·4.75
    assert w.item() == pytest.approx(1.0 - 0.475)


def test_single_step_knobs_and_grad_align_regulariser():
    assert single_step("rs_fgsm", rs_fgsm_step=2.0).step == 2.0 and single_step("rs_fgsm").start == 1.0
    assert single_step("n_fgsm", n_fgsm_noise=3.0).start == 3.0 and not single_step("n_fgsm").project
    assert single_step("grad_align") == single_step("fgsm")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.rand(32, 6), torch.randint(0, 3, (32,))
    at_zero = alignment_penalty(net, x, y, eps=0.0, generator=torch.Generator().manual_seed(0))
    assert at_zero.item() == pytest.approx(0.0, abs=1e-6)  # η = 0: the same gradient twice, cosine 1
    wide = alignment_penalty(net, x, y, eps=1.0, generator=torch.Generator().manual_seed(0))
    assert 0 < wide.item() <= 2
    wide.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net[0].parameters())


def _sgd_run(**hooks):
    from robustgen.train import Data, train

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.1, device="cpu", momentum=0.0)
    train(model, Data(x, y), optimizer, loss="cross_entropy", batch_size=10, max_steps=8, eval_steps=[0],
          generator=torch.Generator().manual_seed(0), progress_every=None, **hooks)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_the_trainer_sets_the_scheduled_rate_and_augments_every_batch_before_the_attack():
    plain = _sgd_run()
    torch.testing.assert_close(_sgd_run(learning_rate=lambda step: 0.1), plain, rtol=0, atol=0)
    assert not torch.equal(_sgd_run(learning_rate=lambda step: 0.1 * (step % 2)), plain)
    torch.manual_seed(0)
    untouched = torch.cat([p.detach().flatten() for p in nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).parameters()])
    torch.testing.assert_close(_sgd_run(learning_rate=lambda step: 0.0), untouched, rtol=0, atol=0)
    modes = []
    _sgd_run(on_evaluation=lambda step, model, record: modes.append(model.training),
             perturb=lambda model, xb, yb: modes.append(model.training) or xb)
    assert modes[0] is False and modes[1] is True and modes[-1] is False  # hook: eval mode; attack: train mode
    seen = []
    _sgd_run(augment=lambda xb, generator: xb + 100.0, perturb=lambda model, xb, yb: seen.append(xb.min()) or xb)
    assert len(seen) == 8 and min(seen) >= 100.0  # the attack sees the augmented batch
    # a regulariser on the clean (augmented, unperturbed) batch changes the step; zero changes nothing
    torch.testing.assert_close(_sgd_run(regulariser=lambda model, xb, yb: 0.0 * model(xb).sum()), plain)
    assert not torch.equal(_sgd_run(regulariser=lambda model, xb, yb: model(xb).square().mean()), plain)


def test_an_in_place_relu_is_refused_where_its_input_is_recorded():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="in-place ReLU"):
        hidden_preactivations(net, torch.rand(2, 3))


def test_preact_shortcuts_follow_each_papers_code():
    """PreActResNet-18 (Wong et al.'s code) projects the raw input; WideResNet the pre-activated one."""
    torch.manual_seed(0)
    preact = build(architecture_spec("preact_resnet18_w2", [1, 8, 8], 10))
    wide = build(architecture_spec("wrn10_1_w2", [1, 8, 8], 10))
    assert {m.shortcut_from for m in preact.modules() if hasattr(m, "shortcut_from")} == {"input"}
    assert {m.shortcut_from for m in wide.modules() if hasattr(m, "shortcut_from")} == {"activation"}
    block = next(m for m in preact.modules() if getattr(m, "shortcut", None) is not None).eval()
    x = torch.randn(2, block.bn1.num_features, 8, 8)
    with torch.no_grad():
        expected = block.conv2(block.relu2(block.bn2(block.conv1(block.relu1(block.bn1(x)))))) + block.shortcut(x)
        torch.testing.assert_close(block(x), expected)
