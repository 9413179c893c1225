"""InterFaceGAN boundaries and the conditional direction between them: the linear algebra of the attribute sliders.

    n = boundary_normal(z, attribute_values)                       # the attribute's change per unit of z
    w = constrained_direction(n_own, [(n_other, 0.35)], n_keep)      # moves own, holds the others back
"""

from __future__ import annotations

import numpy as np
import torch


def boundary_normal(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Coefficients w (z_dim,) of the least-squares fit target ≈ z·w + b: the attribute's change per unit of z."""
    X = torch.cat([z, torch.ones(len(z), 1)], dim=1)
    return torch.linalg.lstsq(X.double(), target.double().unsqueeze(1)).solution[: z.size(1), 0].float()


def constrained_direction(own: torch.Tensor, others: list[tuple[torch.Tensor, float]],
                          keep: torch.Tensor | None = None, keep_min: float = 0.0) -> torch.Tensor | None:
    """Unit w maximising own·w with |n·w| <= rho * own·w for every (n, rho) and keep·w >= keep_min * own·w.

    The optimum lies in the span of the given vectors, so the problem is solved there (SLSQP, a few
    starts); None when it has no solution (e.g. own lies in the span of normals that must not move).
    """
    from scipy.optimize import minimize
    vecs = [own] + [n for n, _ in others] + ([keep] if keep is not None else [])
    Q = torch.linalg.qr(torch.stack(vecs, 1).double())[0].numpy()  # (z_dim, r) orthonormal basis
    a = Q.T @ own.double().numpy()
    if not np.linalg.norm(a) > 1e-12:  # the attribute does not vary with z (or is NaN)
        return None
    cons = [{"type": "eq", "fun": lambda u: u @ u - 1.0}]
    for n, rho in others:
        b = Q.T @ n.double().numpy()
        cons += [{"type": "ineq", "fun": lambda u, b=b, rho=rho: rho * (a @ u) - b @ u},
                 {"type": "ineq", "fun": lambda u, b=b, rho=rho: b @ u + rho * (a @ u)}]
    if keep is not None:
        k = Q.T @ keep.double().numpy()
        cons.append({"type": "ineq", "fun": lambda u: k @ u - keep_min * (a @ u)})
    best = None
    rng = np.random.RandomState(0)
    for u0 in [a / np.linalg.norm(a)] + [rng.randn(len(a)) for _ in range(2)]:
        r = minimize(lambda u: -(a @ u), u0 / np.linalg.norm(u0), constraints=cons, method="SLSQP",
                     options={"maxiter": 200})
        if r.success and a @ r.x > 0 and (best is None or r.fun < best.fun):
            best = r
    if best is None:
        return None
    w = torch.from_numpy(Q @ best.x).float()
    return w / w.norm()
