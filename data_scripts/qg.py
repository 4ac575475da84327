"""Two-layer quasi-geostrophic model on a doubly periodic beta-plane, in PyTorch.

Equations, parameters and numerics are those of pyqg 0.7's ``QGModel``
(pseudo-spectral, aliased products in flux form, third-order Adams-Bashforth
started by Euler and AB2, exponential spectral filter applied every step),
so that a trajectory started from the same ``q`` follows pyqg's to round-off
until chaos separates them. On top of that the model is batched over the
leading dimension, runs on CPU or GPU in float64 or float32, and is
differentiable (every operation is an autograd-aware torch op).

Potential vorticity (PV) anomaly and streamfunction, layers i = 1 (upper), 2:

    q1 = lap psi1 + F1 (psi2 - psi1),   q2 = lap psi2 + F2 (psi1 - psi2),
    F1 = 1 / (rd^2 (1 + delta)),        F2 = delta F1,   delta = H1 / H2,

    dq_i/dt = -J(psi_i, q_i) - U_i dq_i/dx - Qy_i dpsi_i/dx  [- rek lap psi2 in layer 2]
    Qy1 = beta + F1 (U1 - U2),          Qy2 = beta - F2 (U1 - U2),

with the advection computed as -(d/dx[(u + U) q] + d/dy[v q]), u = -dpsi/dy,
v = dpsi/dx, in spectral space. ``nz=1`` is the single-layer forced
beta-plane (Frezat et al. 2022): dw/dt + J(psi, w) = nu lap w - mu w
- beta dpsi/dx + F, w = lap psi (no stretching, no background flow; ``rd``,
``delta``, ``H1``, ``U1``, ``U2`` are not used), mu = ``rek``. ``nu`` (a
Laplacian viscosity on q) and ``forcing`` (a fixed PV tendency field) apply
to any ``nz``; both are off by default, as in pyqg.

Speed (the design requires beating pyqg's Cython + FFTW per trajectory): inside a
run the state stays in spectral space and a step is ONE batched inverse real FFT
of the stacked spectra of (u + U, v, q) of every layer (field by field for large
grids on CPU), one product, ONE batched forward real FFT of the fluxes
(u + U) q, v q, and one pass over memory for
everything else (tendency, AB3 update, filter, next (u, v) spectra), with every
wavenumber operator precomputed. On CPU outside autograd that pass is a small
fused C kernel (compiled on first use, see ``backend``) working in place on
reused buffers, members in cache-sized chunks; with autograd, or on GPU, the
same arithmetic runs as torch ops. ``benchmarks/qg_speed.py`` measures it
against pyqg.

Deviations from pyqg, all below round-off for the default square grid: the
meridional wavenumbers use ``ny`` (pyqg uses ``nx``, a bug for ny != nx), and
filter factors below eps^2 of the working precision are exactly 0 (avoids
subnormal arithmetic). As in pyqg, the spectral state keeps the imaginary
parts that real FFTs ignore at the Nyquist column and row.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
from collections.abc import Iterator

import torch

__all__ = ["EDDY", "JET", "QGModel", "keep_freed_memory"]

#: pyqg "eddy" configuration of Ross et al. (2023, JAMES).
EDDY = dict(beta=1.5e-11, rd=15000.0, delta=0.25, rek=5.787e-7, U1=0.025, U2=0.0,
            H1=500.0, L=1e6, dt=3600.0, filterfac=23.6)
#: pyqg "jet" configuration of Ross et al. (2023): weaker beta, thinner upper layer, weaker drag.
JET = dict(EDDY, beta=1e-11, delta=0.1, rek=7e-8)

#: AB3 coefficients (current, previous, before previous) for ablevel 0, 1, 2 (pyqg's kernel).
_AB = ((1.0, 0.0, 0.0), (1.5, -0.5, 0.0), (23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0))


def keep_freed_memory(max_bytes: int = 32 * 1024 * 1024) -> bool:
    """Ask glibc to keep freed blocks below ``max_bytes`` in the heap instead of unmapping them.

    torch's CPU FFTs allocate their outputs and work arrays on every call; at 256^2
    these are MB-sized, and by default glibc returns them to the OS, so each step
    pays thousands of page faults (measured: 1-2k per step, up to half the step time
    on a VM). Raising the mmap and trim thresholds removes that cost. Process-wide
    and optional (long CPU runs and benchmarks call it); returns False where glibc's
    ``mallopt`` is not available.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, int(max_bytes))) and bool(
            libc.mallopt(m_trim_threshold, 2 ** 30))
    except (OSError, AttributeError):
        return False


# --------------------------------------------------------------------------- fused CPU kernel
# Everything between the two FFTs of a step (tendency assembly, Euler/AB2/AB3 update,
# filter, and the spectra of u + U, v, q for the next inverse FFT) as ONE pass over
# memory, instead of ~11 torch ops that each stream the spectral arrays. Plain C,
# compiled once with the system C compiler into a per-user cache and called through
# ctypes on contiguous CPU tensors; without a compiler the torch in-place path is used.
def _c_source() -> str:
    """C source of the fused step, one function per (precision, nz, forcing or not), layers unrolled.

    All arrays contiguous: S (B, 3, nz, nl, nk) spectra of u + U, v, q (q in, all out),
    fh (B, 2, nz, nl, nk) spectra of the fluxes (u + U) q, v q, d0/d1/d2 (B, nz, nl, nk)
    tendencies (d0 out), filtr (nl, nk), forcing (nz, nl, nk) (read by the _f1 variants
    only); complex arrays interleave (re, im). The inversion matrix and the linear
    operator (mean-PV-gradient advection, bottom drag, viscosity) are recomputed from
    k, l and the scalars: cheaper than streaming them from memory. The innermost loop
    runs over k with unit stride, no inner loops and no branches, so it vectorises.
    """
    funcs = []
    for real, tag, nz, forced in ((r, t, z, f) for r, t in (("double", "f64"), ("float", "f32"))
                                  for z in (1, 2) for f in (0, 1)):
        L = range(nz)
        body = ["const R kv = kk[k], f = fl[k], w = kv*kv + lv*lv;"]
        if nz == 2:  # psi = a q, a = -[[w + F2, F1], [F2, w + F1]] / (w (w + F1 + F2))
            body += ["const R det = w*(w + F1 + F2), inv = det == 0 ? 0 : 1/det;",
                     "const R a00 = -(w + F2)*inv, a01 = -F1*inv, a10 = -F2*inv, a11 = -(w + F1)*inv;"]
        else:
            body += ["const R a00 = w == 0 ? 0 : -1/w;"]
        for j in L:
            body.append(f"R q{j}r = Sq[2*({j}*P+k)], q{j}i = Sq[2*({j}*P+k)+1];")
        for i in L:
            o = f"2*({i}*P+k)"
            pr = " + ".join(f"a{i}{j}*q{j}r" for j in L)
            pi = " + ".join(f"a{i}{j}*q{j}i" for j in L)
            sr = "rek*w" if i == nz - 1 else "0"       # (sr + i si) psi: drag on the lowest layer,
            body += [                                   # si = -k Qy_i: mean PV gradient advection
                f"R s{i}r = {pr}, s{i}i = {pi}, g{i}r = {sr}, g{i}i = -kv*Qy[{i}];",
                f"R d{i}r = g{i}r*s{i}r - g{i}i*s{i}i - nu*w*q{i}r + kv*Fu[{o}+1] + lv*Fv[{o}+1];",
                f"R d{i}i = g{i}r*s{i}i + g{i}i*s{i}r - nu*w*q{i}i - kv*Fu[{o}] - lv*Fv[{o}];",
                *([f"d{i}r += Fo[{o}]; d{i}i += Fo[{o}+1];"] if forced else []),
                f"e0[{o}] = d{i}r; e0[{o}+1] = d{i}i;",
                f"R n{i}r = f*(q{i}r + c0*d{i}r + c1*e1[{o}] + c2*e2[{o}]);",
                f"R n{i}i = f*(q{i}i + c0*d{i}i + c1*e1[{o}+1] + c2*e2[{o}+1]);",
            ]
        for i in L:
            o = f"2*({i}*P+k)"
            pr = " + ".join(f"a{i}{j}*n{j}r" for j in L)
            pi = " + ".join(f"a{i}{j}*n{j}i" for j in L)
            body += [
                f"R p{i}r = {pr}, p{i}i = {pi};",
                f"Su[{o}] = lv*p{i}i; Su[{o}+1] = -lv*p{i}r;",
                f"Sv[{o}] = -kv*p{i}i; Sv[{o}+1] = kv*p{i}r;",
                f"Sq[{o}] = n{i}r; Sq[{o}+1] = n{i}i;",
            ]
        inner = "\n                ".join(body)
        funcs.append(f"""
void qg_step_{tag}_nz{nz}_f{forced}(long B, long nl, long nk, R* restrict S, const R* restrict fh,
        R* restrict d0, const R* restrict d1, const R* restrict d2, const R* restrict filtr,
        const R* restrict forcing, const R* restrict kk, const R* restrict ll, const R* restrict Qy,
        const R* restrict UM, R F1, R F2, R rek, R nu, R c0, R c1, R c2)
{{
    const long P = nl * nk, Z = {nz};
    for (long b = 0; b < B; b++)
        for (long l = 0; l < nl; l++) {{
            const R lv = ll[l];
            R* Su = S + 2 * ((b * 3) * Z * P + l * nk);
            R* Sv = S + 2 * ((b * 3 + 1) * Z * P + l * nk);
            R* Sq = S + 2 * ((b * 3 + 2) * Z * P + l * nk);
            const R* Fu = fh + 2 * ((b * 2) * Z * P + l * nk);
            const R* Fv = fh + 2 * ((b * 2 + 1) * Z * P + l * nk);
            R* e0 = d0 + 2 * (b * Z * P + l * nk);
            const R* e1 = d1 + 2 * (b * Z * P + l * nk);
            const R* e2 = d2 + 2 * (b * Z * P + l * nk);
            const R* fl = filtr + l * nk;
            const R* Fo = forcing + 2 * l * nk;
            for (long k = 0; k < nk; k++) {{
                {inner}
            }}
            if (l == 0)
                for (long i = 0; i < Z; i++) Su[2 * i * P] += UM[i];
        }}
}}""".replace("R* ", f"{real}* ").replace("R ", f"{real} "))
    return "\n".join(funcs) + "\n"


_C_SRC = _c_source()
_KERNEL = None
_KERNEL_LOCK = threading.Lock()


def _load_kernel():
    """The compiled fused kernels (ctypes functions by (dtype, nz, forced)), or None where they cannot be built.

    Thread-safe: the first caller compiles (or loads the cached library) while holding a lock, and
    every concurrent caller waits for it and gets the same answer. Publishing "unavailable" before
    the build was done let concurrent first callers fall back to the torch path, whose rounding
    differs, so threaded generation gave different bytes from run to run.
    """
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL or None
    with _KERNEL_LOCK:
        if _KERNEL is None:
            _KERNEL = _build_kernel() or False
    return _KERNEL or None


def _build_kernel():
    """Compile or load the fused kernel library; None if that is impossible here."""
    if os.environ.get("OSSE_QG_NO_C_KERNEL"):
        return None
    import ctypes
    import hashlib
    import platform
    import shutil
    import subprocess
    import tempfile

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        warnings.warn("data_scripts.qg: no C compiler found; the QG model uses torch ops only (slower on CPU)",
                      RuntimeWarning, stacklevel=3)
        return None
    flags = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC", "-std=c99"]
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu += next((ln for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    key = hashlib.sha256("\n".join([_C_SRC, cc, *flags, platform.machine(), cpu]).encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    lib = None
    uid = getattr(os, "getuid", lambda: 0)()
    for d in (os.path.join(base, "osse_bench"), os.path.join(tempfile.gettempdir(), f"osse_bench_{uid}")):
        path = os.path.join(d, f"qg_kernel_{key}.so")
        try:
            if not os.path.exists(path):
                os.makedirs(d, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=d) as tmp:
                    src = os.path.join(tmp, "qg_kernel.c")
                    with open(src, "w") as f:
                        f.write(_C_SRC)
                    out = os.path.join(tmp, "qg_kernel.so")
                    subprocess.run([cc, *flags, src, "-o", out], check=True, capture_output=True, timeout=120)
                    os.replace(out, path)
            lib = ctypes.CDLL(path)
            break
        except (OSError, subprocess.SubprocessError):
            continue
    if lib is None:
        warnings.warn("data_scripts.qg: could not build the fused CPU kernel; using torch ops (slower)",
                      RuntimeWarning, stacklevel=3)
        return None
    fns = {}
    for dtype, tag, ct in ((torch.float64, "f64", ctypes.c_double), (torch.float32, "f32", ctypes.c_float)):
        for nz in (1, 2):
            for forced in (False, True):
                fn = getattr(lib, f"qg_step_{tag}_nz{nz}_f{int(forced)}")
                fn.restype = None
                fn.argtypes = [ctypes.c_long] * 3 + [ctypes.c_void_p] * 11 + [ct] * 7
                fns[dtype, nz, forced] = fn
    return fns


class QGModel:
    """Two-layer (``nz=2``) or single-layer (``nz=1``) QG model, pyqg ``QGModel`` numerics.

    Keyword names, units and defaults follow pyqg's ``QGModel``. State ``q``:
    PV anomaly in s^-1, shape (..., nz, ny, nx), grid order as pyqg's ``q``
    (y first; cell centres x = (i + 0.5) dx, y = (j + 0.5) dy).

    Main methods: ``step(q, n)`` (pure; restarts Euler/AB2/AB3 like a fresh pyqg
    model), ``run(q0, n, every)`` (one continuous run, yields snapshots),
    ``invert``, ``velocities``, ``tendency`` (grid space) and their spectral ``*_h``
    versions, ``energy`` / ``energy_budget_h`` (diagnostics), ``initial_condition``.

    ``backend``: "auto" uses a fused C kernel for the elementwise work of a step on
    CPU outside autograd (compiled on first use with the system C compiler, cached
    under ~/.cache/osse_bench; set OSSE_QG_NO_C_KERNEL=1 to disable), "torch" only
    torch ops. Both give the same numbers to round-off.

    Parameters are fixed at construction, except ``dt`` which may be reassigned.

    ``num_threads``: if set, torch's CPU threads are set to it while the model steps
    (and restored afterwards); 1 is best for small grids and on shared machines,
    where multi-threaded MKL FFTs of small arrays can be orders of magnitude slower.

    Attributes of interest: ``x, y`` (1-D grid, m), ``k, l`` (1-D wavenumbers
    of the rfft2 layout, rad/m: ``k`` has nx//2+1 entries, ``l`` ny entries in
    FFT order with the Nyquist entry negative as in pyqg), ``wv2`` (k^2 + l^2),
    ``a`` (inversion matrix, (nz, nz, nl, nk)), ``filtr`` (spectral filter),
    ``Qy``, ``Ubg``, ``F1``, ``F2``, ``Hi``, ``dx``, ``dy``, ``dt``.
    """

    #: spectra per chunk of members in the CPU kernel path (see ``_integrate_kernel``)
    _CHUNK_BYTES = 2 << 20
    #: one layer's spectrum above which the CPU kernel path does its inverse FFTs with
    #: scipy's pocketfft (256^2: 30 % faster than torch's MKL c2r here; slower below)
    _POCKET_BYTES = 256 << 10

    def __init__(self, nx: int = 64, ny: int | None = None, L: float = 1e6, W: float | None = None,
                 dt: float = 7200.0, rek: float = 5.787e-7, filterfac: float = 23.6,
                 beta: float = 1.5e-11, rd: float = 15000.0, delta: float = 0.25, H1: float = 500.0,
                 U1: float = 0.025, U2: float = 0.0, nz: int = 2, nu: float = 0.0, forcing=None,
                 dtype: torch.dtype = torch.float64, device="cpu", num_threads: int | None = None,
                 backend: str = "auto"):
        if nz not in (1, 2):
            raise ValueError(f"nz must be 1 or 2, got {nz}")
        ny = nx if ny is None else ny
        W = L if W is None else W
        if nx % 2 or ny % 2:
            raise ValueError("nx and ny must be even")
        self.nx, self.ny, self.nz = int(nx), int(ny), int(nz)
        self.nk, self.nl = self.nx // 2 + 1, self.ny
        self.L, self.W, self.dt = float(L), float(W), float(dt)
        self.rek, self.filterfac, self.beta = float(rek), float(filterfac), float(beta)
        self.rd, self.delta, self.H1 = float(rd), float(delta), float(H1)
        self.U1, self.U2, self.nu = float(U1), float(U2), float(nu)
        self.dtype = dtype
        self.cdtype = {torch.float64: torch.complex128, torch.float32: torch.complex64}[dtype]
        self.device = torch.device(device)
        self.num_threads = num_threads
        if backend not in ("auto", "torch"):
            raise ValueError(f"backend must be 'auto' or 'torch', got {backend!r}")
        self.backend = backend
        self.dx, self.dy = self.L / self.nx, self.W / self.ny
        self.M = self.nx * self.ny

        f64 = dict(dtype=torch.float64)
        x = (torch.arange(self.nx, **f64) + 0.5) * self.dx
        y = (torch.arange(self.ny, **f64) + 0.5) * self.dy
        kk = 2 * math.pi / self.L * torch.arange(self.nk, **f64)
        ll = 2 * math.pi / self.W * torch.fft.fftfreq(self.ny, d=1.0 / self.ny, **f64)
        k2, l2 = kk[None, :], ll[:, None]
        wv2 = k2 ** 2 + l2 ** 2

        if nz == 2:
            self.H2 = self.H1 / self.delta
            self.Hi = torch.tensor([self.H1, self.H2], **f64)
            self.F1 = 1.0 / (self.rd ** 2 * (1.0 + self.delta))
            self.F2 = self.delta * self.F1
            self.Ubg = torch.tensor([self.U1, self.U2], **f64)
            self.Qy = torch.tensor([self.beta + self.F1 * (self.U1 - self.U2),
                                    self.beta - self.F2 * (self.U1 - self.U2)], **f64)
            det = wv2 * (wv2 + self.F1 + self.F2)
            det_inv = torch.where(det == 0, torch.zeros_like(det), 1.0 / torch.where(det == 0, 1.0, det))
            a = torch.stack([torch.stack([-(wv2 + self.F2) * det_inv, -self.F1 * det_inv * torch.ones_like(wv2)]),
                             torch.stack([-self.F2 * det_inv * torch.ones_like(wv2), -(wv2 + self.F1) * det_inv])])
        else:
            self.H2 = None
            self.Hi = torch.tensor([self.H1], **f64)
            self.F1 = self.F2 = 0.0
            self.Ubg = torch.zeros(1, **f64)
            self.Qy = torch.tensor([self.beta], **f64)
            inv = torch.where(wv2 == 0, torch.zeros_like(wv2), -1.0 / torch.where(wv2 == 0, 1.0, wv2))
            a = inv[None, None]
        self.H = float(self.Hi.sum())

        cphi = 0.65 * math.pi
        wvx = torch.sqrt((k2 * self.dx) ** 2 + (l2 * self.dy) ** 2)
        filtr = torch.where(wvx > cphi, torch.exp(-self.filterfac * (wvx - cphi) ** 4), torch.ones_like(wvx))
        # damping factors below eps^2 of the working precision are set to 0: what they would
        # keep is far below round-off, and multiplying by them creates subnormal numbers
        # (100x slower arithmetic) in the highest modes
        filtr = torch.where(filtr < torch.finfo(dtype).eps ** 2, torch.zeros_like(filtr), filtr)

        ik = 1j * k2.to(torch.complex128)
        il = 1j * l2.to(torch.complex128)
        eye = torch.eye(nz, **f64)[:, :, None, None]
        # beta/mean-PV-gradient advection, bottom drag (last layer) and viscosity, as a matrix on qh
        # (advection by U enters through the flux (u + U) q, as in pyqg)
        drag = torch.zeros(nz, **f64)
        drag[-1] = self.rek
        lin = (-ik * self.Qy[:, None, None, None] + drag[:, None, None, None] * wv2) * a - self.nu * wv2 * eye
        # stack operator: qh -> spectra of (u, v, q) for every layer: u = -psi_y, v = psi_x
        G = torch.stack([-il * a, ik * a, eye.expand_as(a).to(torch.complex128)])  # (3, nz, nz, nl, nk)
        # constant that makes the inverse FFT return the full zonal velocity u + U
        C0 = torch.zeros(3, nz, self.nl, self.nk, dtype=torch.complex128)
        C0[0, :, 0, 0] = self.Ubg * self.M

        dev, rd_, cd = self.device, self.dtype, self.cdtype
        self.x, self.y = x.to(dev, rd_), y.to(dev, rd_)
        self.k, self.l = kk.to(dev, rd_), ll.to(dev, rd_)
        self.wv2 = wv2.to(dev, rd_)
        self.a = a.to(dev, rd_)
        self.filtr = filtr.to(dev, rd_)
        self._lin_bg = lin.to(dev, cd)
        self._G = G.to(dev, cd)
        self._C0 = C0.to(dev, cd)
        self._Dk = (-ik).to(dev, cd)          # (1, nk)
        self._Dl = (-il).to(dev, cd)          # (nl, 1)
        self._wts = torch.full((self.nk,), 2.0, **f64)
        self._wts[0] = 1.0
        self._wts[-1] = 1.0
        self._wts = self._wts.to(dev, rd_)
        self.forcing = None
        self._Fh = None
        if forcing is not None:
            f = torch.as_tensor(forcing, dtype=torch.float64)
            if f.dim() == 2:
                f = f.expand(nz, self.ny, self.nx)
            if tuple(f.shape) != (nz, self.ny, self.nx):
                raise ValueError(f"forcing must have shape (nz, ny, nx) or (ny, nx), got {tuple(f.shape)}")
            self.forcing = f.to(dev, rd_)
            self._Fh = torch.fft.rfft2(f).to(dev, cd)

    # ------------------------------------------------------------------ transforms
    def fft(self, q: torch.Tensor) -> torch.Tensor:
        """Real grid field (..., ny, nx) -> rfft2 coefficients (..., nl, nk), pyqg's normalisation."""
        return torch.fft.rfft2(q)

    def ifft(self, qh: torch.Tensor) -> torch.Tensor:
        """rfft2 coefficients (..., nl, nk) -> real grid field (..., ny, nx)."""
        return torch.fft.irfft2(qh, s=(self.ny, self.nx))

    def _check(self, q: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        if q.shape[-3:] != (self.nz, self.ny, self.nx):
            raise ValueError(f"expected (..., {self.nz}, {self.ny}, {self.nx}), got {tuple(q.shape)}")
        lead = tuple(q.shape[:-3])
        return q.to(self.device, self.dtype).reshape(-1, self.nz, self.ny, self.nx), lead

    # ------------------------------------------------------------------ physics
    def invert_h(self, qh: torch.Tensor) -> torch.Tensor:
        """Spectral streamfunction from spectral PV, (..., nz, nl, nk); the k = l = 0 mode is 0."""
        a = self.a.to(qh.real)
        return (a * qh.unsqueeze(-4)).sum(-3)

    def invert(self, q: torch.Tensor) -> torch.Tensor:
        """Streamfunction psi (m^2/s) of PV q (1/s), same shape; zero-mean per layer."""
        qb, lead = self._check(q)
        return self.ifft(self.invert_h(self.fft(qb))).reshape(*lead, self.nz, self.ny, self.nx)

    def velocities(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eddy velocities (u, v) = (-dpsi/dy, dpsi/dx) in m/s (background U not included)."""
        qb, lead = self._check(q)
        ph = self.invert_h(self.fft(qb))
        u = self.ifft(-1j * self.l[:, None] * ph).reshape(*lead, self.nz, self.ny, self.nx)
        v = self.ifft(1j * self.k[None, :] * ph).reshape(*lead, self.nz, self.ny, self.nx)
        return u, v

    def tendency_h(self, qh: torch.Tensor, dealias: bool = False) -> torch.Tensor:
        """dqh/dt (no filter) of spectral PV qh (B, nz, nl, nk): advection, beta, drag, nu, forcing.

        ``dealias=True`` evaluates the products on a 3/2-padded grid (the HR Nyquist
        modes of u, v, q are dropped there); the model itself never dealiases (pyqg).
        """
        G, C0 = self._G, self._C0
        S = torch.addcmul(C0, G[:, :, 0], qh[:, None, 0:1])
        for j in range(1, self.nz):
            S = torch.addcmul(S, G[:, :, j], qh[:, None, j:j + 1])
        if dealias:
            fh = self._padded_fluxes(S)
        else:
            R = torch.fft.irfft2(S, s=(self.ny, self.nx))
            fh = torch.fft.rfft2(R[:, :2] * R[:, 2:3])
        return self._assemble(qh, fh)

    def _assemble(self, qh, fh):
        lin = self._lin_bg
        d = lin[:, 0] * qh[:, 0:1]
        for j in range(1, self.nz):
            d = torch.addcmul(d, lin[:, j], qh[:, j:j + 1])
        d = torch.addcmul(d, self._Dk, fh[:, 0])
        d = torch.addcmul(d, self._Dl, fh[:, 1])
        if self._Fh is not None:
            d = d + self._Fh
        return d

    def _padded_fluxes(self, S: torch.Tensor) -> torch.Tensor:
        """rfft2 of (u q, v q) computed on a 3/2-padded grid, truncated back (no aliasing)."""
        ny, nx = self.ny, self.nx
        my, mx = 3 * ny // 2, 3 * nx // 2
        P = S.new_zeros(*S.shape[:-2], my, mx // 2 + 1)
        h = ny // 2
        P[..., :h, :nx // 2] = S[..., :h, :nx // 2]
        P[..., my - h + 1:, :nx // 2] = S[..., ny - h + 1:, :nx // 2]
        R = torch.fft.irfft2(P * (my * mx / (ny * nx)), s=(my, mx))
        Fp = torch.fft.rfft2(R[:, :2] * R[:, 2:3]) * (ny * nx / (my * mx))
        fh = Fp.new_zeros(*Fp.shape[:-2], ny, self.nk)
        fh[..., :h, :nx // 2] = Fp[..., :h, :nx // 2]
        fh[..., ny - h + 1:, :nx // 2] = Fp[..., my - h + 1:, :nx // 2]
        return fh

    def tendency(self, q: torch.Tensor, dealias: bool = False) -> torch.Tensor:
        """dq/dt in 1/s^2 on the grid (right-hand side without the filter), same shape as q."""
        qb, lead = self._check(q)
        return self.ifft(self.tendency_h(self.fft(qb), dealias=dealias)).reshape(*lead, self.nz, self.ny, self.nx)

    # ------------------------------------------------------------------ time stepping
    def _integrate(self, qh: torch.Tensor, n_steps: int, every: int) -> Iterator[tuple[int, torch.Tensor]]:
        """One continuous Euler/AB2/AB3 run from qh; yields (steps done, qh) every ``every`` steps.

        With autograd (qh or the forcing requires grad) only out-of-place torch ops are
        used. Otherwise the run updates preallocated buffers in place, on CPU through the
        fused C kernel. Grad mode and thread count are switched only while the generator
        computes, never across a yield, so the caller's code between snapshots runs in
        the caller's own modes.
        """
        needs_grad = torch.is_grad_enabled() and (
            qh.requires_grad or (self.forcing is not None and self.forcing.requires_grad))
        if needs_grad:
            return self._guarded(self._integrate_functional(qh, n_steps, every), no_grad=False)
        kernel = _load_kernel() if self.backend == "auto" and qh.device.type == "cpu" else None
        if kernel is not None:
            gen = self._integrate_kernel(qh, n_steps, every, kernel[self.dtype, self.nz, self._Fh is not None])
        else:
            gen = self._integrate_inplace(qh, n_steps, every)
        return self._guarded(gen, no_grad=True)

    def _guarded(self, gen, no_grad: bool):
        """Run ``gen`` with grad disabled (if asked) and torch threads = ``num_threads`` (if set), per step of it."""
        set_threads = self.num_threads is not None and self.device.type == "cpu"
        while True:
            old = torch.get_num_threads()
            if set_threads:
                torch.set_num_threads(self.num_threads)
            try:
                with torch.set_grad_enabled(False) if no_grad else contextlib.nullcontext():
                    item = next(gen)
            except StopIteration:
                return
            finally:
                if set_threads:
                    torch.set_num_threads(old)
            yield item

    def _integrate_functional(self, qh, n_steps, every, closure=None):
        dt, filtr = self.dt, self.filtr
        d1 = d2 = None
        for n in range(1, n_steps + 1):
            c = _AB[min(n - 1, 2)]
            d0 = self.tendency_h(qh)
            if closure is not None:
                d0 = d0 + self.fft(closure(self.ifft(qh)))
            new = torch.add(qh, d0, alpha=c[0] * dt)
            if n > 1:
                new = torch.add(new, d1, alpha=c[1] * dt)
            if n > 2:
                new = torch.add(new, d2, alpha=c[2] * dt)
            qh, d2, d1 = new * filtr, d1, d0
            if n % every == 0:
                yield n, qh

    def _integrate_inplace(self, qh0, n_steps, every):
        nz, dt, filtr = self.nz, self.dt, self.filtr
        B = qh0.shape[0]
        Guv, lin, Dk, Dl, Fh_forcing = self._G[:2], self._lin_bg, self._Dk, self._Dl, self._Fh
        UM = self._C0[0, :, 0, 0]
        has_U = bool((UM != 0).any())
        S = qh0.new_empty(B, 3, nz, self.nl, self.nk)   # spectra of (u + U, v, q), all layers
        S[:, 2] = qh0
        qh, Suv = S[:, 2], S[:, :2]
        qh_r, filtr_r = torch.view_as_real(qh), filtr[..., None]
        flux = torch.empty(B, 2, nz, self.ny, self.nx, dtype=self.dtype, device=qh0.device)
        ds = [torch.empty_like(qh0) for _ in range(3)]

        def fill_uv():
            torch.mul(Guv[:, :, 0], qh[:, None, 0:1], out=Suv)
            for j in range(1, nz):
                Suv.addcmul_(Guv[:, :, j], qh[:, None, j:j + 1])
            if has_U:
                S[:, 0, :, 0, 0] += UM

        fill_uv()
        for n in range(1, n_steps + 1):
            c = _AB[min(n - 1, 2)]
            R = torch.fft.irfft2(S, s=(self.ny, self.nx))
            torch.mul(R[:, :2], R[:, 2:3], out=flux)
            del R
            fh = torch.fft.rfft2(flux)
            d0, d1, d2 = ds
            torch.mul(lin[:, 0], qh[:, 0:1], out=d0)
            for j in range(1, nz):
                d0.addcmul_(lin[:, j], qh[:, j:j + 1])
            d0.addcmul_(Dk, fh[:, 0])
            d0.addcmul_(Dl, fh[:, 1])
            del fh
            if Fh_forcing is not None:
                d0.add_(Fh_forcing)
            qh.add_(d0, alpha=c[0] * dt)
            if n > 1:
                qh.add_(d1, alpha=c[1] * dt)
            if n > 2:
                qh.add_(d2, alpha=c[2] * dt)
            qh_r.mul_(filtr_r)
            ds = [d2, d0, d1]
            if n % every == 0:
                yield n, qh.clone()
            if n < n_steps:
                fill_uv()

    def _integrate_kernel(self, qh0, n_steps, every, fn):
        """In-place run with the fused C kernel between the FFTs (CPU, no autograd).

        Members go through the run in chunks of about 2 MB of spectra (one batched irfft2,
        one product, one rfft2 and one kernel call per chunk and step), chunk after chunk
        between two snapshots, so that a chunk's working set stays in cache; MKL's batched
        transforms also slow down several-fold on large batches. When a layer's spectrum
        is large (256^2) the inverse FFTs use scipy's pocketfft on the same memory:
        torch's MKL c2r copies its input twice and is slower per transform there.
        """
        nz, dt, nl, nk, ny, nx = self.nz, self.dt, self.nl, self.nk, self.ny, self.nx
        B = qh0.shape[0]
        filtr = self.filtr.contiguous()
        forcing = None if self._Fh is None else self._Fh.contiguous()
        S = qh0.new_empty(B, 3, nz, nl, nk)           # spectra of (u + U, v, q), all layers
        S[:, 2] = qh0
        G = self._G[:2]
        torch.mul(G[:, :, 0], S[:, None, 2, 0:1], out=S[:, :2])
        for j in range(1, nz):
            S[:, :2].addcmul_(G[:, :, j], S[:, None, 2, j:j + 1])
        S[:, 0, :, 0, 0] += self._C0[0, :, 0, 0]
        ds = [torch.zeros_like(qh0) for _ in range(3)]
        flux = torch.empty(B, 2, nz, ny, nx, dtype=self.dtype)
        chunk = max(1, min(B, self._CHUNK_BYTES // (S[0].numel() * S.element_size())))
        pocket = None
        if S[0, 0, 0].numel() * S.element_size() > self._POCKET_BYTES:
            try:
                import scipy.fft as pocket
            except ImportError:
                pocket = None
        S_np = S.numpy()

        Qy = self.Qy.to(self.dtype)
        consts = [filtr.data_ptr(), (filtr if forcing is None else forcing).data_ptr(),
                  self.k.data_ptr(), self.l.data_ptr(), Qy.data_ptr()]  # without forcing it is never read
        UM = (self.Ubg * self.M).to(self.dtype)
        done = 0
        while done < n_steps:
            # members are independent: each chunk runs all steps up to the next snapshot
            # while its arrays are hot in cache, then the next chunk (same arithmetic)
            end = min(n_steps, (done // every + 1) * every)
            for b0 in range(0, B, chunk):
                b1 = min(B, b0 + chunk)
                for n in range(done + 1, end + 1):
                    c = _AB[min(n - 1, 2)]
                    r = (1 - n) % 3                      # the buffer roles rotate with n
                    d0, d1, d2 = ds[r], ds[(r + 1) % 3], ds[(r + 2) % 3]
                    if pocket is not None:
                        R = torch.from_numpy(pocket.irfft2(S_np[b0:b1], s=(ny, nx)))
                    else:
                        R = torch.fft.irfft2(S[b0:b1], s=(ny, nx))
                    torch.mul(R[:, :2], R[:, 2:3], out=flux[b0:b1])
                    del R
                    fh = torch.fft.rfft2(flux[b0:b1])
                    fn(b1 - b0, nl, nk, S[b0].data_ptr(), fh.data_ptr(),
                       d0[b0].data_ptr(), d1[b0].data_ptr(), d2[b0].data_ptr(), *consts, UM.data_ptr(),
                       self.F1, self.F2, self.rek, self.nu, c[0] * dt, c[1] * dt, c[2] * dt)
                    del fh
            done = end
            if done % every == 0:
                yield done, S[:, 2].clone()

    def step(self, q: torch.Tensor, n_steps: int = 1) -> torch.Tensor:
        """Advance q by ``n_steps`` steps; a new tensor. Restarts the scheme (Euler, AB2, AB3), as a fresh pyqg model."""
        qb, lead = self._check(q)
        qh = self.fft(qb)
        for _, out in self._integrate(qh, int(n_steps), max(int(n_steps), 1)):
            qh = out
        return self.ifft(qh).reshape(*lead, self.nz, self.ny, self.nx)

    def run(self, q0: torch.Tensor, n_steps: int, every: int = 1) -> Iterator[tuple[int, torch.Tensor]]:
        """Generator over one continuous run: yields (steps done, q) after every ``every`` steps.

        The initial state is not yielded; the multistep history is kept between yields.
        """
        qb, lead = self._check(q0)
        for n, qh in self._integrate(self.fft(qb), int(n_steps), int(every)):
            yield n, self.ifft(qh).reshape(*lead, self.nz, self.ny, self.nx)

    def run_closed(self, q0: torch.Tensor, n_steps: int, every: int, closure) -> Iterator[tuple[int, torch.Tensor]]:
        """One continuous run of dq/dt = RHS(q) + closure(q); yields (steps done, q) after every ``every`` steps.

        ``closure`` maps grid PV (B, nz, ny, nx) to the subgrid PV forcing S on the same grid
        (the term added to the tendency, as the dataset's ``S``), every step, before the AB3
        update and the filter (as pyqg applies a q parameterization). Torch ops only, so the run
        is differentiable through the closure and the state (online training). Not batched
        over leading dims beyond the first.
        """
        qb, lead = self._check(q0)
        for n, qh in self._integrate_functional(self.fft(qb), int(n_steps), int(every), closure):
            yield n, self.ifft(qh).reshape(*lead, self.nz, self.ny, self.nx)

    def step_closed(self, q: torch.Tensor, n_steps: int, closure) -> torch.Tensor:
        """``step`` with a closure (see ``run_closed``); restarts the multistep scheme."""
        out = q
        for _, out in self.run_closed(q, n_steps, n_steps, closure):
            pass
        return out

    def initial_condition(self, batch: int = 1, seed: int = 0) -> torch.Tensor:
        """pyqg's QGModel initial PV: q1 = 1e-7 U[0,1)(y,x) + 1e-6 U[0,1)(x), q2 = 0 (1/s).

        Drawn with a CPU float64 torch.Generator seeded by ``seed`` (deterministic),
        shape (batch, nz, ny, nx). For ``nz=1`` the single layer gets the q1 recipe.
        """
        g = torch.Generator().manual_seed(int(seed))
        q = torch.zeros(batch, self.nz, self.ny, self.nx, dtype=torch.float64)
        small = torch.rand(batch, self.ny, self.nx, generator=g, dtype=torch.float64)
        zonal = torch.rand(batch, 1, self.nx, generator=g, dtype=torch.float64)
        q[:, 0] = 1e-7 * small + 1e-6 * zonal
        return q.to(self.device, self.dtype)

    # ------------------------------------------------------------------ diagnostics
    def spec_sum(self, fh: torch.Tensor, gh: torch.Tensor | None = None) -> torch.Tensor:
        """Grid mean of f*g from rfft2 coefficients (Parseval with the rfft half-plane weights)."""
        gh = fh if gh is None else gh
        return (self._wts * (fh * gh.conj()).real).sum((-2, -1)) / self.M ** 2

    def energy_h(self, qh: torch.Tensor) -> dict[str, torch.Tensor]:
        """Energy per unit mass (m^2/s^2) of spectral PV (..., nz, nl, nk).

        ``ke``: per-layer 0.5 mean(u^2 + v^2) (pyqg's EKE diagnostic), shape (..., nz);
        ``ape``: 0.5 (H1/H) F1 mean((psi1 - psi2)^2) (0 for nz=1);
        ``total``: sum_i (H_i/H) ke_i + ape, the quantity the dynamics conserve without
        forcing and dissipation.
        """
        ph = self.invert_h(qh)
        ke = 0.5 * self.spec_sum(ph * self.wv2.sqrt())
        w = (self.Hi / self.H).to(ke)
        if self.nz == 2:
            ape = 0.5 * (self.H1 / self.H) * self.F1 * self.spec_sum(ph[..., 0, :, :] - ph[..., 1, :, :])
        else:
            ape = torch.zeros_like(ke[..., 0])
        return {"ke": ke, "ape": ape, "total": (w * ke).sum(-1) + ape}

    def energy(self, q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Energy diagnostics of grid PV q (..., nz, ny, nx); see ``energy_h``."""
        return self.energy_h(self.fft(q.to(self.device, self.dtype)))

    def energy_rate_h(self, qh: torch.Tensor, dqh: torch.Tensor) -> torch.Tensor:
        """dE/dt of the total energy for a PV tendency dqh: -sum_i (H_i/H) mean(psi_i dq_i/dt)."""
        ph = self.invert_h(qh)
        w = (self.Hi / self.H).to(ph.real)
        return -(w * self.spec_sum(ph, dqh)).sum(-1)

    def energy_budget_h(self, qh: torch.Tensor) -> dict[str, torch.Tensor]:
        """Instantaneous energy sources and sinks (m^2/s^3) of spectral PV qh (B, nz, nl, nk).

        ``generation``: rate from the background terms (baroclinic conversion of the mean
        shear plus beta, whose own contribution is zero); ``drag``: bottom-drag loss
        (positive); ``viscosity``: viscous loss (positive); ``forcing``: work of ``forcing``;
        ``advection``: the Jacobian's contribution (zero up to round-off: the
        pseudo-spectral flux form conserves energy).
        """
        ph = self.invert_h(qh)
        nz = self.nz
        ik = 1j * self.k[None, :].to(self.cdtype)
        bg = -ik * (self.Ubg.to(self.device, self.dtype)[:, None, None] * qh
                    + self.Qy.to(self.device, self.dtype)[:, None, None] * ph)
        drag = torch.zeros_like(qh)
        drag[:, nz - 1] = self.rek * self.wv2 * ph[:, nz - 1]
        visc = -self.nu * self.wv2 * qh
        S = self._G[:, :, 0] * qh[:, None, 0:1]
        for j in range(1, nz):
            S = torch.addcmul(S, self._G[:, :, j], qh[:, None, j:j + 1])
        R = torch.fft.irfft2(S, s=(self.ny, self.nx))
        fh = torch.fft.rfft2(R[:, :2] * R[:, 2:3])
        adv = self._Dk * fh[:, 0] + self._Dl * fh[:, 1]
        out = {"generation": self.energy_rate_h(qh, bg), "drag": -self.energy_rate_h(qh, drag),
               "viscosity": -self.energy_rate_h(qh, visc), "advection": self.energy_rate_h(qh, adv)}
        out["forcing"] = (self.energy_rate_h(qh, self._Fh.expand_as(qh)) if self._Fh is not None
                          else torch.zeros_like(out["drag"]))
        return out

    def __repr__(self) -> str:
        return (f"QGModel(nx={self.nx}, ny={self.ny}, nz={self.nz}, L={self.L}, dt={self.dt}, beta={self.beta}, "
                f"rd={self.rd}, delta={self.delta}, rek={self.rek}, U1={self.U1}, U2={self.U2}, nu={self.nu}, "
                f"dtype={self.dtype}, device={self.device})")
