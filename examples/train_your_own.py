"""Train your own model outside ``bench run`` and submit its predictions (README, "Train your own model").

A small residual 1-D CNN on the Lorenz-96 ring learns the ``l96-da`` analysis increment
(truth − background) from the challenge's training pairs, is applied to the test inputs,
and its predictions are written in the template's format; ``bench score`` then validates
and scores them like any other submission.

    python examples/train_your_own.py --size tiny --out runs/my-cnn.zarr
    bench score l96-da runs/my-cnn.zarr --size tiny --name my-cnn

Only the train split is used for fitting and the val split for choosing the epoch; the test
split gives inputs only (``Challenge.test_inputs``), never the truth.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from bench.registry import get_challenge


def channels(ds) -> torch.Tensor:
    """(n, 3, N): background, observed value (0 where unobserved), observation mask."""
    mask = ds["obs_mask"].values
    y = np.where(mask, ds["y"].values, 0.0)
    x = np.stack([ds["background"].values, y, mask.astype(float)], axis=1)
    return torch.as_tensor(x, dtype=torch.float32)


class RingCNN(nn.Module):
    """Convolutions with circular padding: the periodic ring of Lorenz-96."""

    def __init__(self, width: int = 64, depth: int = 4):
        super().__init__()
        layers, c = [], 3
        for _ in range(depth):
            layers += [nn.Conv1d(c, width, 5, padding=2, padding_mode="circular"), nn.GELU()]
            c = width
        layers.append(nn.Conv1d(c, 1, 5, padding=2, padding_mode="circular"))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return x[:, 0] + self.net(x)[:, 0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--out", default="runs/my-cnn.zarr")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)

    ch = get_challenge("l96-da")
    train, val = ch.training_pairs(args.size, "train"), ch.training_pairs(args.size, "val")
    xt, yt = channels(train), torch.as_tensor(train["target"].values, dtype=torch.float32)
    xv, yv = channels(val), torch.as_tensor(val["target"].values, dtype=torch.float32)

    model = RingCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    best, best_state = float("inf"), None
    for epoch in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(xt)).split(64):
            loss = nn.functional.mse_loss(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            v = nn.functional.mse_loss(model(xv), yv).item()
        if v < best:
            best, best_state = v, {k: t.clone() for k, t in model.state_dict().items()}
        print(f"epoch {epoch:3d}  train {loss.item():.4f}  val RMSE {v ** 0.5:.4f}")
    model.load_state_dict(best_state)

    test = ch.test_inputs(args.size)
    sub = ch.template(args.size)
    with torch.no_grad():
        sub["x"].values[:] = model(channels(test)).double().numpy()
    sub.to_zarr(args.out, mode="w")
    print(f"wrote {args.out}; score it with: bench score l96-da {args.out} --size {args.size} --name my-cnn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
