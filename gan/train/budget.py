"""--time-budget: fit the run's total steps and its learning-rate cool-down to a wall-clock budget.

The rule (docs/training.md):

1. The run starts with a provisional plan: its --epochs/--steps (the cap), the cool-down over the last
   --lr-cooldown of it. Warm-up and the stable phase do not depend on the total.
2. Observation points are deterministic in the step, so every rank reaches them together: each epoch's end
   and the steps 8, 16, 32, ... after the plan began. The first one opens the measuring window (the start-up
   steps stay out of it); once the window has lasted max(5% of the budget, up to 60 s) rank 0 measures the
   seconds a step (evaluations excluded, counted on their own), fits the total the remaining budget allows
   (never above the cap) and moves the cool-down start with it; every rank receives the result.
3. It re-estimates at later observation points, at most once a window, while the plan is in its stable
   phase (a shared machine changes speed). When the run reaches the cool-down start the total is frozen,
   so the decay is one straight line; an estimate that puts the start in the past begins it at once.
4. The run stops exactly at the fitted total. The plan (measurements included) is in every checkpoint, so
   --resume with the same --time-budget continues the same schedule; training_options.json records it.

With --lr-schedule cosine or linear the decay spans the fitted run: the rate holds at the base rate
until the first estimate, which freezes the total and starts the decay. With --lr-schedule constant and
--lr-cooldown 0 nothing is fitted: the run stops at the first epoch end after the budget (the older rule).
"""

from __future__ import annotations

import sys
import time

from .distributed import any_rank, broadcast_values
from .outputs import wall_time
from .run import Run
from .schedules import BudgetPlan, cooldown_start, fit_steps

FIRST_OBSERVATION = 8  # steps after the plan began: the start-up steps before it are never measured
WINDOW_FRACTION = 0.05  # of the budget: the shortest measuring window ...
WINDOW_MAX_S = 60.0  # ... but never longer than this


def fits_schedule(run: Run) -> bool:
    """Whether this run's --time-budget fits its length and schedule (else the older epoch-end stop)."""
    c = run.cfg
    return c.time_budget > 0 and (c.lr_cooldown > 0 or c.lr_schedule != "constant")


def run_seconds(run: Run) -> float:
    """Training wall-clock seconds of the run so far, earlier attempts (--resume) included (the budget's clock)."""
    return wall_time(run)


def start(run: Run) -> None:
    """Set run.plan (and run.total) for this call: continue a checkpoint's plan for the same budget, else a new one."""
    cfg, old = run.cfg, run.plan
    if not fits_schedule(run):
        if old is not None and run.d.main and run.step < old.total:
            print(f"note: the --time-budget {old.budget_min:g} schedule of this run (fitted total {old.total}) is "
                  f"not continued; this call runs to step {run.total} with its own schedule", file=sys.stderr)
        run.plan = None
        return
    if (old is not None and old.budget_min == cfg.time_budget and old.schedule == cfg.lr_schedule
            and old.cooldown == cfg.lr_cooldown):
        run.total = old.total  # the same schedule, where the checkpoint left it
        return
    cap = run.total
    run.plan = BudgetPlan(
        budget_min=cfg.time_budget, schedule=cfg.lr_schedule, cooldown=cfg.lr_cooldown,
        deadline_s=run.wall_before + 60.0 * cfg.time_budget, start_step=run.step, cap=cap, total=cap,
        decay_start=cooldown_start(cap, cfg.lr_cooldown, run.step) if cfg.lr_schedule == "constant" else cap)
    if old is not None and run.d.main:
        print(f"note: --time-budget {cfg.time_budget:g} starts a new schedule at step {run.step} "
              f"(the checkpoint's was fitted to {old.budget_min:g} min)", file=sys.stderr)


def after_step(run: Run) -> None:
    """Every rank, after each step: stop, freeze or re-fit the run's length as the budget says."""
    plan = run.plan
    if plan is None:
        if run.cfg.time_budget and run.step % run.steps_per_epoch == 0 and run.step < run.total:
            _stop_if_budget_spent(run)
        return
    if plan.frozen:
        return
    if run.step >= plan.decay_start:  # the cool-down begins with the next step: its length is fixed from here
        _freeze(plan, run.step)
        return
    since = run.step - plan.start_step
    if run.step % run.steps_per_epoch and not (since >= FIRST_OBSERVATION and since & (since - 1) == 0):
        return  # not an observation point (an epoch end, or 8, 16, 32, ... steps in)
    if run.d.main:
        _estimate(run)
    frozen_at = plan.frozen_at if plan.frozen_at is not None else -1
    total, decay, frozen, frozen_at = broadcast_values(  # collective (budget): every rank, same steps
        [plan.total, plan.decay_start, float(plan.frozen), frozen_at], run.d, "time budget plan", run.step)
    plan.total, plan.decay_start, plan.frozen = int(total), int(decay), bool(frozen)
    plan.frozen_at = int(frozen_at) if frozen_at >= 0 else None
    run.total = plan.total


def note_evaluation(run: Run, seconds: float) -> None:
    """An evaluation took `seconds` (rank 0): kept apart from the seconds a step, and reserved for later ones."""
    if run.plan is not None:
        run.plan.eval_s += seconds
        run.plan.eval_cost_s = seconds


def _estimate(run: Run) -> None:
    """Rank 0 at an observation point: open the measuring window, or fit the total to the remaining budget."""
    plan, now = run.plan, run_seconds(run)
    if now >= plan.deadline_s:  # spent already (a budget shorter than the measuring): stop here
        plan.total = plan.decay_start = run.step
        _freeze(plan, run.step)
        return
    if plan.ref_step is None:
        plan.ref_step, plan.ref_s, plan.ref_eval_s = run.step, now, plan.eval_s
        return
    window = min(WINDOW_MAX_S, WINDOW_FRACTION * 60.0 * plan.budget_min)
    if now - plan.ref_s < window or run.step <= plan.ref_step:
        return
    busy = (now - plan.ref_s) - (plan.eval_s - plan.ref_eval_s)
    plan.s_per_step = busy / (run.step - plan.ref_step)
    plan.ref_step, plan.ref_s, plan.ref_eval_s = run.step, now, plan.eval_s
    cfg = run.cfg
    left = fit_steps(plan.deadline_s - now, plan.s_per_step, eval_period=cfg.eval_every * run.steps_per_epoch,
                     eval_cost_s=plan.eval_cost_s)
    plan.total = min(plan.cap, run.step + left)
    plan.fits += 1
    if plan.first_fit is None:
        plan.first_fit = {"step": run.step, "s_per_step": round(plan.s_per_step, 6), "total": plan.total}
    if plan.schedule != "constant":  # cosine/linear: the decay spans the rest of the fitted run, from here
        plan.decay_start = run.step
    else:
        plan.decay_start = max(cooldown_start(plan.total, plan.cooldown, plan.start_step), run.step)
    if plan.decay_start <= run.step:
        _freeze(plan, run.step)


def _freeze(plan: BudgetPlan, step: int) -> None:
    plan.frozen, plan.frozen_at = True, step


def record(run: Run) -> dict:
    """What training_options.json says about a budgeted run: the length it got and, if fitted, how."""
    plan = run.plan
    if plan is None:
        return {}
    fit = {"budget_min": plan.budget_min, "s_per_step": plan.s_per_step and round(plan.s_per_step, 6),
           "first_fit": plan.first_fit, "fits": plan.fits, "total_steps": plan.total, "cap_steps": plan.cap,
           "cooldown_start": plan.decay_start, "frozen_at": plan.frozen_at, "start_step": plan.start_step,
           "eval_s": round(plan.eval_s, 1)}
    return {"steps": plan.total, "epochs": max(1, round(plan.total / run.steps_per_epoch)), "time_budget_fit": fit}


def _stop_if_budget_spent(run: Run) -> None:
    """--time-budget without a fitted schedule: at an epoch's end, once this call has trained that long, make
    this step the last one.

    The run's --epochs (or --steps) is set to where it stopped, so the checkpoint, the model folder and
    training_options.json say how far it got, and ``--resume --epochs N`` continues it.
    """
    spent = time.time() - run.t_start >= 60 * run.cfg.time_budget
    if not any_rank(spent, run.d, "time budget spent", run.step):  # collective (epoch): every rank
        return
    run.total = run.step
    if run.cfg.steps:
        run.cfg.steps = run.step
    else:
        run.cfg.epochs = run.step // run.steps_per_epoch
    if run.d.main:
        print(f"--time-budget {run.cfg.time_budget:g} min spent: stopping after epoch "
              f"{run.step // run.steps_per_epoch} (step {run.step})", file=sys.stderr)
