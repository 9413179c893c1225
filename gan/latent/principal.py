"""Unsupervised latent directions: GANSpace (PCA of G's first layer) and SeFa (closed-form factorization).

    dirs, share = gan_space(G, z, y, k=8)     # (k, z_dim) unit rows, explained-variance ratios
    dirs, share = sefa(G, k=8)                # (k, z_dim) unit rows, eigenvalue shares

Both only use the generator: GANSpace its first-layer activations (Generator.early_features), SeFa its
first linear map (Generator.latent_weight). Labels, scales and de-duplication are in gan.latent.fitting.
"""

from __future__ import annotations

import torch
import torch.nn as nn


@torch.no_grad()
def gan_space(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, k: int, seed: int = 0,
              chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """GANSpace (Härkönen et al. 2020): (k, z_dim) unit directions and their explained-variance ratios (k,).

    PCA of the first-layer activations over latents z (and labels y), each component mapped back to z by
    least squares (z ≈ coords @ U). For a conditional model the activations are centred per class, so
    the components describe what z (not the class) changes.
    """
    feats = torch.cat([G.early_features(z[i:i + chunk], None if y is None else y[i:i + chunk])
                       for i in range(0, len(z), chunk)])  # (N, C0*S0*S0)
    if y is None:
        feats -= feats.mean(0, keepdim=True)
    else:
        n_cls = int(y.max()) + 1
        means = torch.zeros(n_cls, feats.size(1)).index_add_(0, y, feats)
        means /= torch.bincount(y, minlength=n_cls).clamp_min(1).unsqueeze(1)
        feats -= means[y]
    total_var = feats.pow(2).sum() / (len(feats) - 1)
    q = min(k + 8, *feats.shape)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        U, S, _ = torch.pca_lowrank(feats, q=q, center=False, niter=2)
    del feats
    coords = U[:, :k] * S[:k]  # (N, k) PCA coordinates of every sample
    dirs = torch.linalg.lstsq(coords, z - z.mean(0, keepdim=True)).solution  # (k, z_dim)
    dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-12)
    ratio = S[:k].pow(2) / (len(coords) - 1) / total_var.clamp_min(1e-12)
    return dirs, ratio


@torch.no_grad()
def sefa(G: nn.Module, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa (Shen & Zhou 2021): the top-k eigenvectors (k, z_dim) of A^T A for G's first map A, and their shares.

    A moves z to the first layer's normalised pre-activation, so these are the directions that change
    it most per unit of z. Signs are fixed so that each row's largest entry is positive (deterministic).
    """
    A = G.latent_weight().double()  # (C0*S0*S0, z_dim)
    evals, evecs = torch.linalg.eigh(A.T @ A)  # ascending
    order = torch.arange(len(evals) - 1, -1, -1)  # descending eigenvalues
    vecs = evecs[:, order[:k]].T  # (k, z_dim)
    sign = torch.sign(vecs.gather(1, vecs.abs().argmax(1, keepdim=True)))
    share = evals[order[:k]] / evals.sum().clamp_min(1e-12)
    return (vecs * sign).float(), share.float()
