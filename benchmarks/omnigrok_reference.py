"""A reference training loop that follows the Omnigrok MNIST notebook's protocol as published, written from
its description (docs/protocols.md §2), to time robustgen's loop against:

float64 throughout; a shuffled `DataLoader` over the training set with batch 200; AdamW; MSE on one-hot
targets; train and test accuracy and loss computed over the whole sets through `DataLoader`s of batch 50 (one
pass per quantity, as the notebook's compute_accuracy / compute_loss) at every step below 30, every 10 steps
below 150, then every ceil(10^5 / 150) steps. It is a benchmark baseline, not part of the workflow.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def omnigrok_log_steps(max_steps: int, total: int = 100_000) -> set[int]:
    every = math.ceil(total / 150)
    return {s for s in range(max_steps + 1) if s < 30 or (s < 150 and s % 10 == 0) or s % every == 0}


def _accuracy(network, dataset, batch_size=50) -> float:
    correct = 0
    with torch.no_grad():
        for x, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            correct += (network(x).argmax(dim=1) == labels).sum().item()
    return correct / len(dataset)


def _loss(network, dataset, one_hots, loss_fn, batch_size=50) -> float:
    total = 0.0
    with torch.no_grad():
        for x, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            total += loss_fn(network(x), one_hots[labels]).item() * len(x)
    return total / len(dataset)


def train_reference(train_x, train_y, test_x, test_y, *, init_scale=8.0, weight_decay=0.01, seed=0,
                    max_steps=100_000, memorised_train_acc=0.99, generalised_test_acc=0.85) -> dict:
    """Train until test accuracy exceeds `generalised_test_acc` (or `max_steps`); return the steps and the
    wall seconds (from the first step) at which each checkpoint was first seen, and the step time."""
    dtype = torch.float64
    torch.manual_seed(seed)
    train_set = TensorDataset(train_x.to(dtype), train_y)
    test_set = TensorDataset(test_x.to(dtype), test_y)
    loader = DataLoader(train_set, batch_size=200, shuffle=True, drop_last=True)
    network = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                            nn.Linear(200, 10)).to(dtype)
    with torch.no_grad():
        for p in network.parameters():
            p.data = init_scale * p.data
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=weight_decay)
    loss_fn = nn.MSELoss()
    one_hots = torch.eye(10, dtype=dtype)
    log_steps = omnigrok_log_steps(max_steps)
    found = dict(memorised_step=None, memorised_seconds=None, generalised_step=None, generalised_seconds=None)
    start = time.perf_counter()
    steps = 0
    while steps < max_steps and found["generalised_step"] is None:
        for x, labels in loader:
            if steps in log_steps:
                train_acc, test_acc = _accuracy(network, train_set), _accuracy(network, test_set)
                _loss(network, train_set, one_hots, loss_fn), _loss(network, test_set, one_hots, loss_fn)
                sum(torch.pow(p, 2).sum() for p in network.parameters()).sqrt().item()  # the weight norm
                now = time.perf_counter() - start
                if found["memorised_step"] is None and train_acc >= memorised_train_acc:
                    found.update(memorised_step=steps, memorised_seconds=now)
                if test_acc > generalised_test_acc:
                    found.update(generalised_step=steps, generalised_seconds=now)
                    break
            loss = loss_fn(network(x), one_hots[labels])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps >= max_steps:
                break
    return dict(found, steps=steps, seconds=time.perf_counter() - start)


def reference_step_seconds(train_x, train_y, steps: int) -> float:
    """Seconds per training step of the reference loop alone (no evaluation), in float64."""
    torch.manual_seed(0)
    dtype = torch.float64
    loader = DataLoader(TensorDataset(train_x.to(dtype), train_y), batch_size=200, shuffle=True, drop_last=True)
    network = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                            nn.Linear(200, 10)).to(dtype)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn, one_hots = nn.MSELoss(), torch.eye(10, dtype=dtype)

    def run(n):
        done = 0
        while done < n:
            for x, labels in loader:
                loss = loss_fn(network(x), one_hots[labels])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                done += 1
                if done == n:
                    return

    run(20)
    start = time.perf_counter()
    run(steps)
    return (time.perf_counter() - start) / steps
