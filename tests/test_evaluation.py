import torch
import torch.nn.functional as F
from torch import nn

from robustgen.evaluation import evaluate, loss_fn, predict


def _model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def test_evaluate_matches_direct_computation_for_both_losses():
    model = _model()
    x, y = torch.randn(37, 6), torch.randint(0, 3, (37,))
    out = model(x)
    acc = (out.argmax(1) == y).double().mean()
    mse = ((out - F.one_hot(y, 3).float()) ** 2).mean()
    ce = F.cross_entropy(out, y)
    torch.testing.assert_close(evaluate(model, x, y, "mse"), torch.stack([mse.double(), acc]).detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(evaluate(model, x, y, "cross_entropy"), torch.stack([ce.double(), acc]).detach(), rtol=1e-6, atol=1e-7)


def test_evaluate_is_independent_of_chunking():
    model = _model()
    x, y = torch.randn(50, 6), torch.randint(0, 3, (50,))
    whole = evaluate(model, x, y, "mse", chunk=1000)
    for chunk in (1, 7, 49):
        torch.testing.assert_close(evaluate(model, x, y, "mse", chunk=chunk), whole, rtol=1e-6, atol=1e-7)


def test_mse_loss_is_omnigrok_mse_on_one_hot_targets():
    out = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([0, 1])
    # squared errors: [0, 0] and [0, 1] -> mean over all 4 elements = 0.25
    assert loss_fn("mse", out, labels).item() == 0.25


def test_predict_is_argmax():
    model = _model()
    x = torch.randn(20, 6)
    assert torch.equal(predict(model, x, chunk=3), model(x).argmax(1))
