"""The PyTorch anchor, run in its own process (no JAX imported) so that PyTorch's OpenMP threads
and XLA's thread pool never compete for the two cores."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path) as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def synthetic(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 784-pixel "images" in [0, 1) and labels 0-9: for smoke runs without the data."""
    rng = np.random.default_rng(0)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)


def load(synthetic_n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST training set as (60000, 784) float32 in [0, 1] and int64 labels (or
    :func:`synthetic` data when ``synthetic_n`` is given)."""
    if synthetic_n:
        return synthetic(synthetic_n)
    x = _idx(FASHION_MNIST / "train-images-idx3-ubyte.gz").reshape(-1, 784)
    y = _idx(FASHION_MNIST / "train-labels-idx1-ubyte.gz")
    return (x / np.float32(255)).astype(np.float32), y.astype(np.int64)


def run(
    hidden: int,
    epochs: int,
    lr: float,
    seed: int,
    threads: int = 1,
    synthetic_n: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch eager: nn.Sequential, torch.optim.Adam, randperm batches of in-memory tensors.

    On a 2-core machine shared with other jobs, 2 OpenMP threads made epochs 5-50x slower
    whenever another process held a core (spin-waiting at every parallel region), so the
    benchmark times 1 and 2 threads and takes the faster as the anchor.
    """
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x, y = load(synthetic_n)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()
    seconds, losses = [], []
    for _ in range(epochs):
        t = time.perf_counter()
        perm = torch.randperm(len(xt))
        total = torch.zeros(())
        for i in range(0, len(xt), 128):
            idx = perm[i : i + 128]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        losses.append(float(total) / len(xt))
        seconds.append(time.perf_counter() - t)
    return np.asarray(seconds), np.asarray(losses)


def timed_call(
    hidden: int,
    epochs: int,
    lr: float,
    seed: int,
    threads: int,
    synthetic_n: int | None = None,
    compiled: bool = False,
) -> tuple[float, list[float], float]:
    """A whole PyTorch training call as its best users write it on a CPU: fused Adam, and with
    ``compiled`` the model and loss under ``torch.compile``. Returns the call's seconds (model
    built and, for ``compiled``, compiled inside it), each epoch's seconds and the last loss.
    The last partial batch is dropped, as in the JAX anchors."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x, y = load(synthetic_n)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    t = time.perf_counter()
    model = torch.nn.Sequential(
        torch.nn.Linear(784, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    lossf = torch.nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    if compiled:
        step = torch.compile(step)
    steps = len(xt) // 128
    seconds, last = [], 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(xt))[: steps * 128].view(steps, 128)
        total = torch.zeros(())
        for idx in perm:
            total += step(xt[idx], yt[idx])
        last = float(total) / steps
        seconds.append(time.perf_counter() - t0)
    return time.perf_counter() - t, seconds, last
