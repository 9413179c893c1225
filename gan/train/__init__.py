"""Training: options, the loop and its named steps, torchrun plumbing, and what a run writes.

    from gan.train import TrainConfig, train
    train(TrainConfig(epochs=5, out="runs/x"))

Modules: options (TrainConfig, TrainingError), run (set-up, resume), step (one D/G/EMA iteration),
loop (train()), outputs (progress grids, evaluation, best/, the model folder), schedules (learning rate,
EMA), budget (--time-budget's fitted length), distributed (collectives).
"""

from .loop import train
from .options import RESUME_KEYS, TrainConfig, TrainingError, config_fields
from .outputs import recalibrate_batchnorm
from .run import CKPT_DIR, FINISHED_MARKER, PROGRESS_DIR, build_models

__all__ = ["CKPT_DIR", "FINISHED_MARKER", "PROGRESS_DIR", "RESUME_KEYS", "TrainConfig", "TrainingError",
           "build_models", "config_fields", "recalibrate_batchnorm", "train"]
