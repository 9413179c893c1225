"""One training iteration, as in pytorch/examples' DCGAN: (1) update D, (2) update G, (3) update G's EMA."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..data import to_float
from ..losses import PAIRED_LOSSES, gradient_penalty, r1_r2_penalties
from .distributed import all_finite, all_reduce_grads
from .options import TrainingError
from .run import CKPT_DIR, Run
from .schedules import ema_beta, penalty_weight


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch, a function of (seed, epoch) only."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def ema_update(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters; buffers are copied."""
    with torch.no_grad():
        torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1.0 - beta)
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)


def next_batch(run: Run) -> tuple[torch.Tensor, torch.Tensor | None]:
    """This rank's real images (B, C, R, R) in [-1, 1] and labels for run.step."""
    n, d = len(run.data), run.d
    shard = n // d.world
    epoch, it = divmod(run.step, run.steps_per_epoch)
    if epoch != run.perm_epoch:
        run.perm = epoch_permutation(n, run.cfg.seed, epoch)[d.rank * shard:(d.rank + 1) * shard].to(run.device)
        run.perm_epoch = epoch
    idx = run.perm[it * run.batch:(it + 1) * run.batch]
    real = to_float(run.data.images[idx]).contiguous(memory_format=run.fmt)
    return real, (run.data.labels[idx] if run.num_classes else None)


def train_step(run: Run) -> torch.Tensor | None:
    """One iteration at run.step; returns (d_loss, g_loss, D(x), D(G(z))) or None for a skipped batch."""
    cfg, dev = run.cfg, run.device
    run.set_lr()  # the schedule's rate for this step
    real, y = next_batch(run)
    z = torch.randn(run.batch, cfg.z_dim, device=dev)

    # (1) update D: maximise log D(x) + log(1 - D(G(z))); real and generated images in one pass through D
    #     (D has no batch-dependent layer, and spectral norm's power iteration then runs once for both)
    reg = penalty_weight(run.step, cfg.reg_every) if cfg.r1 > 0 or cfg.r2 > 0 else 0
    run.D.requires_grad_(True)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=run.amp):
        fake = run.G_run(z, y)
        x = run.aug(torch.cat([real, fake.detach()]))  # (2B, C, R, R): real, then generated
        if reg:
            x = x.detach().requires_grad_(True)
        logits = run.D_run(x, None if y is None else torch.cat([y, y])).float()  # (2B,)
        logits_real, logits_fake = logits.chunk(2)
        loss_D = run.d_loss(logits_real, logits_fake)
        if cfg.loss == "wgan-gp":
            loss_D = loss_D + cfg.gp_weight * gradient_penalty(run.D_run, real, fake.detach(), y)
        if reg:  # lazy R1 (real) and R2 (generated, as in R3GAN): every reg_every steps, weighted by reg_every
            r1, r2 = r1_r2_penalties(logits, x, real.size(0))
            loss_D = loss_D + reg * 0.5 * (cfg.r1 * r1 + cfg.r2 * r2)
    run.opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    all_reduce_grads(list(run.D.parameters()), run.d, run.step)  # collective (step): every rank

    # (2) update G: maximise log D(G(z)) (non-saturating) / -D(G(z)) (hinge, WGAN)
    do_g = (run.step + 1) % cfg.d_steps == 0
    loss_G = torch.zeros((), device=dev)
    if do_g:
        run.D.requires_grad_(False)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=run.amp):
            logits_gen = run.D_run(run.aug(fake), y).float()
            # paired losses (rpgan) compare with D(x) of this step's real batch; D has not stepped yet
            loss_G = (run.g_loss(logits_gen, logits_real.detach()) if cfg.loss in PAIRED_LOSSES
                      else run.g_loss(logits_gen))
        run.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        all_reduce_grads(list(run.G.parameters()), run.d, run.step)  # collective (step): every rank, same do_g

    # NaN/inf guard (collective (step): every rank): skip the update everywhere and halve the learning rates
    if not all_finite(torch.isfinite(loss_D) & torch.isfinite(loss_G), run.d, run.step):
        _skip_nonfinite(run, loss_D, loss_G)
        return None
    run.nonfinite = 0
    run.opt_D.step()
    if do_g:
        run.opt_G.step()
        # (3) EMA of G's weights, with a warm-up so early samples are not dominated by the init
        if cfg.ema:
            ema_update(run.G_ema, run.G, ema_beta(run.step, beta=cfg.ema_beta, halflife_kimg=cfg.ema_halflife_kimg,
                                                  images_per_step=run.batch * run.d.world))
        else:
            run.G_ema.load_state_dict(run.G.state_dict())
    with torch.no_grad():
        return torch.stack([loss_D.detach(), loss_G.detach(), torch.sigmoid(logits_real.detach()).mean(),
                            torch.sigmoid(logits_fake.detach()).mean()])


def _skip_nonfinite(run: Run, loss_D: torch.Tensor, loss_G: torch.Tensor) -> None:
    run.nonfinite += 1
    run.lr_scale *= 0.5
    run.set_lr()
    if run.d.main:
        print(f"warning: non-finite loss at step {run.step} (D {loss_D.item()}, G {loss_G.item()}); "
              f"skipped the batch, learning rates now x{run.lr_scale:g}")
    if run.nonfinite >= run.cfg.max_nonfinite:
        raise TrainingError(f"training diverged: {run.nonfinite} consecutive non-finite losses ending at "
                            f"step {run.step}; the last good checkpoint is in {run.out / CKPT_DIR}. Try a "
                            f"lower --lr-g/--lr-d or --spectral-norm")
