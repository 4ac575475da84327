"""Lorenz-96 worlds in PyTorch: the one-scale model and the two-scale model of Wilks (2005).

Both are batched (state ``(batch, n)``; the tendencies and steps also accept
any leading shape ``(..., n)``), follow the dtype and device of their input,
and are pure and differentiable: ``step`` builds a new tensor with out-of-place
operations only, so autograd, ``torch.func.jvp``/``vjp`` and 4D-Var work through
any number of steps. Time integration is classical fourth-order Runge-Kutta.

One-scale model (Lorenz 1996)::

    dx_k/dt = (x_{k+1} - x_{k-2}) x_{k-1} - x_k + F,   k = 0..N-1 (cyclic)

With N = 40, F = 8 it is chaotic with leading Lyapunov exponent about 1.7 per
model time unit; 0.05 time units correspond to 6 h of error growth (Lorenz 1996).

Two-scale model (Lorenz 1996; Wilks 2005), K slow ``X`` and J fast ``Y`` per slow::

    dX_k/dt   = -X_{k-1}(X_{k-2} - X_{k+1}) - X_k + F - (h c / b) sum_j Y_{j,k}
    dY_{j,k}/dt = -c b Y_{j+1,k}(Y_{j+2,k} - Y_{j-1,k}) - c Y_{j,k} + (h c / b) X_k

The fast variables form a single ring of K*J values (``Y_{J,k} = Y_{0,k+1}``),
as in Lorenz (1996) and DAPPER's ``LorenzUV``.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

Closure = Callable[[torch.Tensor], torch.Tensor]


def _l96_advection(x: torch.Tensor) -> torch.Tensor:
    """Quadratic L96 advection (x_{k+1} - x_{k-2}) x_{k-1} along the last axis (cyclic)."""
    return (torch.roll(x, -1, -1) - torch.roll(x, 2, -1)) * torch.roll(x, 1, -1)


def _rk4(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, dt: float, n_steps: int) -> torch.Tensor:
    """n_steps of classical RK4 for the autonomous ODE dx/dt = f(x)."""
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    h2, h6 = 0.5 * dt, dt / 6.0
    for _ in range(int(n_steps)):
        k1 = f(x)
        k2 = f(x + h2 * k1)
        k3 = f(x + h2 * k2)
        k4 = f(x + dt * k3)
        x = x + h6 * (k1 + 2.0 * (k2 + k3) + k4)
    return x


def _trajectory(step: Callable[[torch.Tensor, int], torch.Tensor], x0: torch.Tensor,
                n_steps: int, every: int) -> torch.Tensor:
    """Stack of x0 and the states after every, 2*every, ..., n_steps steps along dim -2."""
    if every < 1 or n_steps < 0 or n_steps % every:
        raise ValueError(f"n_steps ({n_steps}) must be a non-negative multiple of every ({every})")
    out = [x0]
    x = x0
    for _ in range(n_steps // every):
        x = step(x, every)
        out.append(x)
    return torch.stack(out, dim=-2)


def _randn(shape, seed: int, dtype, device) -> torch.Tensor:
    """Standard normal draws from a CPU torch.Generator (bit-identical on every device)."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)


class Lorenz96:
    """Lorenz-96 (N variables, forcing F) integrated with RK4 at time step dt.

    Defaults are the standard DA test bed (N=40, F=8, dt=0.05 = 6 h; Sakov & Oke 2008).
    ``F`` may be a float or a tensor broadcastable to the state (e.g. for parameter
    estimation by autograd).
    """

    def __init__(self, N: int = 40, F: float = 8.0, dt: float = 0.05):
        if N < 4:
            raise ValueError(f"Lorenz-96 needs N >= 4, got {N}")
        self.N, self.F, self.dt = int(N), F, float(dt)

    def tendency(self, x: torch.Tensor) -> torch.Tensor:
        """dx/dt for states ``(..., N)``."""
        return _l96_advection(x) - x + self.F

    def step(self, x: torch.Tensor, n_steps: int = 1) -> torch.Tensor:
        """State after ``n_steps`` RK4 steps of length dt (pure; differentiable)."""
        return _rk4(self.tendency, x, self.dt, n_steps)

    def trajectory(self, x0: torch.Tensor, n_steps: int, every: int = 1) -> torch.Tensor:
        """States at steps 0, every, ..., n_steps, stacked on dim -2.

        For x0 of shape (batch, N) the result is (batch, n_steps // every + 1, N);
        index i is the state at time i * every * dt (index 0 is x0 itself).
        ``n_steps`` must be a multiple of ``every``.
        """
        return _trajectory(self.step, x0, n_steps, every)

    def initial_condition(self, batch: int, seed: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """F plus N(0, 0.01²) noise, shape (batch, N); deterministic given seed (CPU generator).

        Spin up (``spinup``) before use: the perturbation grows onto the attractor
        within about 10 model time units.
        """
        return float(self.F) + 0.01 * _randn((batch, self.N), seed, dtype, device)

    def spinup(self, x0: torch.Tensor, n_steps: int = 2000) -> torch.Tensor:
        """``step(x0, n_steps)`` without building an autograd graph (default 100 time units)."""
        with torch.no_grad():
            return self.step(x0, n_steps)


class Lorenz96TwoScale:
    """Two-scale Lorenz-96 (Wilks 2005): K slow X, J fast Y per slow; RK4 at time step dt.

    State ``(batch, K + K*J)``: the K slow variables first, then the fast ones
    k-major, ``Y_{j,k} = state[:, K + k*J + j]``. ``split``/``join`` convert.

    Time step: the fast variables evolve c = 10 times faster with amplitudes
    ~1/b; RK4 with dt = 0.005 is stable for the default parameters (as DAPPER's
    ``LorenzUV/wilks05`` full model; Wilks 2005 used dt = 1e-4). Its error over
    one step is ~4e-5 in X and ~4e-3 in Y; the fast subsystem is so chaotic
    that trajectories at any two step sizes part within ~0.1 time units, but
    the statistics agree: X mean/std 3.76/5.07 at dt = 0.005 against 3.75/5.06
    at dt = 0.001, and the same regression of the coupling on X. Use a
    smaller dt where pathwise accuracy of Y matters.

    The coarse model is the slow equation alone with a closure S(X) that
    replaces the coupling term ``coupling(state) = -(h c / b) sum_j Y_{j,k}``
    (``slow_tendency``, ``coarse_step``). Without fast variables it is not
    stiff and may use a much larger step (0.05 is stable, as for Lorenz96).
    """

    def __init__(self, K: int = 8, J: int = 32, F: float = 20.0, h: float = 1.0,
                 b: float = 10.0, c: float = 10.0, dt: float = 0.005):
        if K < 4 or J < 1:
            raise ValueError(f"need K >= 4 and J >= 1, got K={K}, J={J}")
        self.K, self.J = int(K), int(J)
        self.F, self.h, self.b, self.c, self.dt = F, h, b, c, float(dt)

    @property
    def n(self) -> int:
        """Length of the full state, K + K*J."""
        return self.K * (1 + self.J)

    def split(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, Y) views of a state: X (..., K), Y (..., K*J) flat, k-major."""
        return state[..., :self.K], state[..., self.K:]

    def join(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """Full state from X (..., K) and Y, either flat (..., K*J) or (..., K, J)."""
        if Y.shape[-1] != self.K * self.J:
            Y = Y.reshape(*Y.shape[:-2], self.K * self.J)
        return torch.cat([X, Y], dim=-1)

    def coupling(self, state: torch.Tensor) -> torch.Tensor:
        """S = -(h c / b) sum_j Y_{j,k}, shape (..., K): the term added to dX/dt (closure target)."""
        Y = state[..., self.K:]
        return -(self.h * self.c / self.b) * Y.reshape(*Y.shape[:-1], self.K, self.J).sum(-1)

    def tendency(self, state: torch.Tensor) -> torch.Tensor:
        """d(state)/dt of the full coupled model, shape (..., K + K*J)."""
        X, Y = self.split(state)
        hcb = self.h * self.c / self.b
        dX = _l96_advection(X) - X + self.F + self.coupling(state)
        Xrep = X.unsqueeze(-1).expand(*X.shape, self.J).reshape(Y.shape)
        adv = (torch.roll(Y, -2, -1) - torch.roll(Y, 1, -1)) * torch.roll(Y, -1, -1)
        dY = -(self.c * self.b) * adv - self.c * Y + hcb * Xrep
        return torch.cat([dX, dY], dim=-1)

    def step(self, state: torch.Tensor, n_steps: int = 1) -> torch.Tensor:
        """Full state after ``n_steps`` RK4 steps of length dt (pure; differentiable)."""
        return _rk4(self.tendency, state, self.dt, n_steps)

    def trajectory(self, state0: torch.Tensor, n_steps: int, every: int = 1) -> torch.Tensor:
        """Full states at steps 0, every, ..., n_steps stacked on dim -2 (see ``Lorenz96.trajectory``)."""
        return _trajectory(self.step, state0, n_steps, every)

    def slow_tendency(self, X: torch.Tensor, closure: Optional[Closure] = None) -> torch.Tensor:
        """Coarse model dX/dt = -X_{k-1}(X_{k-2} - X_{k+1}) - X_k + F + S(X), S = closure(X) or 0."""
        d = _l96_advection(X) - X + self.F
        return d if closure is None else d + closure(X)

    def coarse_step(self, X: torch.Tensor, n_steps: int = 1, closure: Optional[Closure] = None,
                    dt: Optional[float] = None) -> torch.Tensor:
        """X after ``n_steps`` RK4 steps of the slow equation with ``closure``; step dt (default self.dt).

        ``closure`` maps X (..., K) to S (..., K) and is called at every RK4 stage;
        a learned closure is trained online by backpropagating through this.
        """
        return _rk4(lambda z: self.slow_tendency(z, closure), X, self.dt if dt is None else float(dt), n_steps)

    def initial_condition(self, batch: int, seed: int, dtype=torch.float64, device=None) -> torch.Tensor:
        """X = F + N(0, 1), Y = N(0, 0.1²), shape (batch, K + K*J); deterministic given seed.

        Spin up before use (a few model time units: ``spinup``).
        """
        z = _randn((batch, self.n), seed, dtype, device)
        X = float(self.F) + z[:, :self.K]
        return torch.cat([X, 0.1 * z[:, self.K:]], dim=-1)

    def spinup(self, state0: torch.Tensor, n_steps: int = 2000) -> torch.Tensor:
        """``step(state0, n_steps)`` without building an autograd graph (default 10 time units)."""
        with torch.no_grad():
            return self.step(state0, n_steps)
