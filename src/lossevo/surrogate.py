"""The surrogate: train a model with a candidate loss for a budget and return its Fitness.

``Surrogate(cfg)`` builds what every candidate shares from a composed config (data on the
device, augmentation, model factory, recipe); ``train`` trains one job. A result depends only on
the config, the loss and the job's seed.
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lossevo.config import build
from lossevo.data import AugmentedBatches, ImageSplits, OrderedBatches, ShuffledBatches, load_dataset
from lossevo.errors import LossevoError
from lossevo.models import count_parameters, load_checkpoint
from lossevo.module import ClassifierModule
from lossevo.results import Fitness, Status, StopReason
from lossevo.settings import SurrogateSettings, TrainerSettings, validated

log = logging.getLogger(__name__)
# Keys of a model config that are lossevo's, not the model constructor's.
MODEL_KEYS = ("checkpoint", "input_size")


def quiet_lightning() -> None:
    """Silence Lightning's per-fit banners (device info, tips), which cost time per candidate."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")


@dataclass
class Job:
    """One training of one loss: ``loss`` and the seed of model init, data order, augmentation."""

    loss: nn.Module
    seed: int
    name: str = ""


class Surrogate:
    """Everything candidates share, built once from a composed config."""

    def __init__(self, cfg: DictConfig) -> None:
        quiet_lightning()
        self.cfg = cfg
        self.settings: SurrogateSettings = validated(cfg.surrogate, SurrogateSettings, "surrogate")
        self.trainer_settings: TrainerSettings = validated(cfg.get("trainer"), TrainerSettings, "trainer")
        if self.trainer_settings.threads:
            torch.set_num_threads(self.trainer_settings.threads)
        s = self.settings
        if s.steps < 1 or s.batch_size < 1 or s.val_every < 1:
            raise LossevoError("surrogate.steps, surrogate.batch_size and surrogate.val_every must be >= 1")
        self.data: ImageSplits = load_dataset(cfg.dataset)
        self.augment = build(cfg.augment, "augment", num_classes=self.data.num_classes)
        self.optimizer = (
            build(s.optimizer, "surrogate.optimizer") if s.optimizer else partial(torch.optim.Adam, lr=1e-3)
        )
        self.schedule = build(s.schedule, "surrogate.schedule") if s.schedule else None
        self.device = self._device()
        self._train_x = self.data.train_x.to(self.device)
        self._train_y = self.data.train_y.to(self.device)
        self._val = OrderedBatches(
            self.data.val_x.to(self.device), self.data.val_y.to(self.device), s.val_batch_size
        )
        self._test = OrderedBatches(
            self.data.test_x.to(self.device), self.data.test_y.to(self.device), s.val_batch_size
        )
        # Build one model now: a bad model config is the user's error, not a failing candidate.
        model = self.build_model()
        self.parameters = count_parameters(model)
        log.info("%s; model %s: %s parameters; %s; %s steps", self.data.summary(), type(model).__name__,
                 f"{self.parameters:,}", self.augment, f"{s.steps:,}")  # fmt: skip

    def _device(self) -> torch.device:
        accelerator = self.trainer_settings.accelerator
        if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
            if not torch.cuda.is_available():
                raise LossevoError(
                    "trainer.accelerator=gpu but no CUDA device is available; use trainer.accelerator=cpu"
                )
            return torch.device("cuda")
        return torch.device("cpu")

    def build_model(self) -> nn.Module:
        node = OmegaConf.masked_copy(self.cfg.model, [k for k in self.cfg.model if k not in MODEL_KEYS])
        model = build(node, "model", in_channels=self.data.shape[0], num_classes=self.data.num_classes)
        checkpoint = self.cfg.model.get("checkpoint")
        return load_checkpoint(model, checkpoint) if checkpoint else model

    def module(self, loss: nn.Module, seed: int) -> ClassifierModule:
        pl.seed_everything(seed, workers=False, verbose=False)
        return ClassifierModule(
            model=self.build_model(),
            loss=loss,
            settings=self.settings,
            optimizer=self.optimizer,
            schedule=self.schedule,
            augment=self.augment,
            mean=self.data.mean,
            std=self.data.std,
            seed=seed,
            channels_last=self.trainer_settings.channels_last,
        )

    def trainer(self, logger: Any = False, root_dir: str | None = None) -> pl.Trainer:
        t = self.trainer_settings
        return pl.Trainer(
            accelerator="gpu" if self.device.type == "cuda" else "cpu",
            devices=t.devices,
            precision=t.precision,
            max_steps=self.settings.steps,
            val_check_interval=self.settings.val_every,
            check_val_every_n_epoch=None,
            num_sanity_val_steps=0,
            logger=logger,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=max(1, self.settings.val_every),
            default_root_dir=root_dir,
            benchmark=t.benchmark,
        )

    def train(
        self, job: Job, test: bool = False, logger: Any = False, root_dir: str | None = None
    ) -> Fitness:
        """Train one job; every failure (non-finite loss, rejection, exception) becomes a Fitness."""
        start = time.perf_counter()
        module: ClassifierModule | None = None
        try:
            module = self.module(job.loss, job.seed)
            trainer = self.trainer(logger=logger, root_dir=root_dir)
            shuffled = ShuffledBatches(self._train_x, self._train_y, self.settings.batch_size, job.seed)
            batches = AugmentedBatches(shuffled, self.augment, job.seed, self.settings.augment_chunk)
            trainer.fit(module, train_dataloaders=batches, val_dataloaders=self._val)
            validated_last = module.history and module.history[-1][0] == trainer.global_step
            if module.stop_reason != StopReason.NONFINITE and not validated_last:
                trainer.validate(module, dataloaders=self._val, verbose=False)
            if test and module.stop_reason != StopReason.NONFINITE:
                trainer.test(module, dataloaders=self._test, verbose=False)
            steps = trainer.global_step
        except Exception as err:  # a failing candidate must never stop a search
            detail = f"{type(err).__name__}: {err}"
            logging.getLogger(__name__).debug("candidate %s failed:\n%s", job.name, traceback.format_exc())
            if isinstance(err, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()
            return Fitness.failure(StopReason.ERROR, detail, seconds=time.perf_counter() - start)
        seconds = time.perf_counter() - start
        reason = module.stop_reason
        failed = reason in (StopReason.NONFINITE, StopReason.PRECHECK) or module.best_val_acc is None
        return Fitness(
            status=Status.FAILED if failed else Status.DONE,
            fitness=None if failed else module.best_val_acc,
            stop_reason=reason,
            detail=module.stop_detail,
            steps=steps,
            seconds=seconds,
            train_acc=module.train_acc,
            history=list(module.history),
            test_acc=module.test_acc,
        )
