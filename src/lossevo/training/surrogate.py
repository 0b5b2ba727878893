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

from lossevo.config import build, resolved
from lossevo.config.settings import SurrogateSettings, TrainerSettings, validated
from lossevo.data import AugmentedBatches, ImageSplits, OrderedBatches, ShuffledBatches, load_dataset
from lossevo.errors import LossevoError
from lossevo.models import count_parameters, load_checkpoint
from lossevo.models.stacked import stack_kind
from lossevo.results import Fitness, StopReason
from lossevo.training.classifier import ClassifierModule
from lossevo.training.population import PopulationModule, StepClock, measure_population, stacking_problem
from lossevo.training.rules import training_result

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
    """One training of one loss: ``loss``, the ``seed`` of the model's init and the ``data_seed`` of
    batch order and augmentation (``None``: the seed). Trainings that share a data seed see the
    same batches, so they can train together in one pass (:mod:`lossevo.training.population`)."""

    loss: nn.Module
    seed: int
    name: str = ""
    data_seed: int | None = None

    @property
    def data(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed


PROFILERS = (None, "simple", "advanced", "pytorch")  # trainer.profiler


class Surrogate:
    """Everything candidates share, built once from a composed config."""

    def __init__(self, cfg: DictConfig) -> None:
        quiet_lightning()
        self.cfg = cfg
        self.settings: SurrogateSettings = validated(cfg.surrogate, SurrogateSettings, "surrogate")
        trainer = cfg.get("trainer")
        if trainer is not None and "profiler" not in trainer:  # a config written before it existed
            trainer = {**resolved(trainer), "profiler": None}  # (a candidate's config.yaml)
        self.trainer_settings: TrainerSettings = validated(trainer, TrainerSettings, "trainer")
        if self.trainer_settings.profiler not in PROFILERS:
            raise LossevoError(
                f"trainer.profiler={self.trainer_settings.profiler!r} is not a profiler: use simple, "
                "advanced, pytorch or null"
            )
        if self.trainer_settings.threads:
            torch.set_num_threads(_capped_threads(self.trainer_settings.threads))
        s = self.settings
        if s.steps < 1 or s.batch_size < 1 or s.val_every < 1:
            raise LossevoError("surrogate.steps, surrogate.batch_size and surrogate.val_every must be >= 1")
        self.data: ImageSplits = load_dataset(cfg.dataset)
        if s.batch_size > len(self.data.train_x):  # every batch would be short: refused, not trained
            raise LossevoError(
                f"surrogate.batch_size={s.batch_size} exceeds the {len(self.data.train_x)} training images "
                f"of {self.data.name}; lower surrogate.batch_size, or give the dataset more images"
            )
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
        log.info(
            "%s; model %s: %s parameters; %s; %s steps",
            self.data.summary(),
            type(model).__name__,
            f"{self.parameters:,}",
            self.augment,
            f"{s.steps:,}",
        )

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
        try:
            model = build(node, "model", in_channels=self.data.shape[0], num_classes=self.data.num_classes)
        except LossevoError as err:
            what, sep, _ = str(err).partition(": remove it")
            if not sep or str(node.get("_target_", "")).startswith("lossevo."):
                raise
            # model._target_=my.Net on a built-in model's config keeps that model's keys
            raise LossevoError(
                f"{what}: your model receives in_channels, num_classes and every key of the model config; "
                "start from an empty one: model=custom model._target_=..."
            ) from None
        checkpoint = self.cfg.model.get("checkpoint")
        return load_checkpoint(model, checkpoint) if checkpoint else model

    def module(self, loss: nn.Module, seed: int, data_seed: int | None = None) -> ClassifierModule:
        return ClassifierModule(
            model=self.seeded_model(seed),
            loss=loss,
            settings=self.settings,
            optimizer=self.optimizer,
            schedule=self.schedule,
            augment=self.augment,
            mean=self.data.mean,
            std=self.data.std,
            seed=seed,
            channels_last=self.trainer_settings.channels_last,
            data_seed=data_seed,
        )

    def seeded_model(self, seed: int) -> nn.Module:
        """A fresh model initialised from ``seed`` (every global RNG seeded, as Lightning does)."""
        pl.seed_everything(seed, workers=False, verbose=False)
        return self.build_model()

    def batches(self, data_seed: int) -> AugmentedBatches:
        """The training batches of one data seed: order and augmentation."""
        shuffled = ShuffledBatches(self._train_x, self._train_y, self.settings.batch_size, data_seed)
        return AugmentedBatches(shuffled, self.augment, data_seed, self.settings.augment_chunk)

    def trainer(
        self,
        logger: Any = False,
        root_dir: str | None = None,
        steps: int | None = None,
        callbacks: list[pl.Callback] | None = None,
    ) -> pl.Trainer:
        t = self.trainer_settings
        return pl.Trainer(
            accelerator="gpu" if self.device.type == "cuda" else "cpu",
            devices=t.devices,
            precision=t.precision,  # type: ignore[arg-type]  # any precision Lightning takes; it checks the value
            max_steps=self.settings.steps if steps is None else steps,
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
            callbacks=callbacks,
            profiler=_profiler(t.profiler, root_dir),
        )

    def train(
        self, job: Job, test: bool = False, logger: Any = False, root_dir: str | None = None
    ) -> Fitness:
        """Train one job; every failure (non-finite loss, rejection, exception) becomes a Fitness."""
        start = time.perf_counter()
        module: ClassifierModule | None = None
        try:
            module = self.module(job.loss, job.seed, job.data)
            trainer = self.trainer(logger=logger, root_dir=root_dir)
            trainer.fit(module, train_dataloaders=self.batches(job.data), val_dataloaders=self._val)
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
        return training_result(
            module.stop_reason,
            module.stop_detail,
            module.best_val_acc,
            steps=steps,
            seconds=time.perf_counter() - start,
            train_acc=module.train_acc,
            history=module.history,
            test_acc=module.test_acc,
            test_hits=module.test_hits,
        )

    # ------------------------------------------------------------------ populations
    def _sample(self) -> torch.Tensor:
        """A few normalised training images: what a stack is checked on."""
        mean = torch.tensor(self.data.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.data.std, device=self.device).view(1, -1, 1, 1)
        return (self._train_x[:4].float().div(255) - mean) / std

    def stacking_problem(self) -> str | None:
        """Why this recipe's candidates cannot train together in one pass (``None``: they can);
        checked once."""
        if not hasattr(self, "_stacking_problem"):
            sample = self._sample()
            self._stacking_problem = stacking_problem(
                lambda: self.build_model().to(self.device),
                sample,
                self.optimizer,
                self.trainer_settings.precision,
            )
            if self._stacking_problem:
                log.warning("these candidates train one at a time: %s", self._stacking_problem)
            else:  # decided once per recipe, not per pass
                models = [self.build_model().to(self.device) for _ in range(2)]
                self._stack_kind = stack_kind(models, sample)
        return self._stacking_problem

    def population_size(self) -> int:
        """``surrogate.population`` as a number: ``auto`` is 1 on a CPU (stacking gains little
        there) and, on a GPU, the size with the most member-steps per second, measured once."""
        size = self.settings.population
        if size != "auto":
            return max(1, int(size))
        if self.device.type != "cuda" or self.stacking_problem():
            return 1
        if not hasattr(self, "_measured_population"):
            self._measured_population = measure_population(self._time_population)
            log.info("surrogate.population=auto: %d candidates per pass", self._measured_population)
        return self._measured_population

    def _time_population(self, k: int, steps: int = 30) -> float:
        """Seconds per step of a pass of k members (cross-entropy, their own init seeds)."""
        from lossevo.losses import get_loss

        jobs = [Job(get_loss("cross_entropy"), seed, "measure", data_seed=0) for seed in range(k)]
        clock = StepClock(skip=min(5, steps // 3))
        self._population_pass(jobs, steps=steps, callbacks=[clock])
        if clock.seconds_per_step is None:
            raise RuntimeError(f"a population of {k} stopped before {steps} steps")
        return clock.seconds_per_step

    def train_population(self, jobs: list[Job], test: bool = False) -> list[Fitness]:
        """Train ``jobs`` (one data seed) together in one pass, one Fitness each, as if each had
        trained alone. A recipe that cannot be stacked, or a pass that fails as a whole, trains
        them one at a time."""
        if len(jobs) == 1 or self.stacking_problem():
            return [self.train(job, test=test) for job in jobs]
        if len({job.data for job in jobs}) != 1:
            raise ValueError("a population's jobs must share one data seed")
        start = time.perf_counter()
        try:
            module = self._population_pass(jobs)
            if test:
                module.test(self._test)
        except Exception as err:  # never lose the members to a failing pass: train them alone
            log.warning(
                "a population of %d failed (%s: %s); training them one at a time",
                len(jobs),
                type(err).__name__,
                err,
            )
            log.debug("population failure:\n%s", traceback.format_exc())
            if isinstance(err, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()
            return [self.train(job, test=test) for job in jobs]
        seconds = time.perf_counter() - start
        log.info("%d trainings in one pass (%.1f s)", len(jobs), seconds)
        return module.results(seconds / len(jobs))

    def _population_pass(
        self, jobs: list[Job], steps: int | None = None, callbacks: list[pl.Callback] | None = None
    ) -> PopulationModule:
        problem = self.stacking_problem()
        if problem:
            raise TypeError(problem)
        module = PopulationModule(
            stack=self._stack_kind([self.seeded_model(job.seed).to(self.device) for job in jobs]),
            losses=[job.loss for job in jobs],
            settings=self.settings,
            optimizer=self.optimizer,
            schedule=self.schedule,
            augment=self.augment,
            mean=self.data.mean,
            std=self.data.std,
            data_seed=jobs[0].data,
            val=self._val,
            channels_last=self.trainer_settings.channels_last,
        )
        trainer = self.trainer(steps=steps, callbacks=callbacks)
        trainer.fit(module, train_dataloaders=self.batches(jobs[0].data))
        return module


def _capped_threads(threads: int) -> int:
    """``trainer.threads``, at most this machine's cores (more only thrash it), saying so."""
    from lossevo.machine import cpu_cores

    cores = cpu_cores()
    if threads > cores:
        log.warning("trainer.threads=%d exceeds this machine's %d cores: using %d", threads, cores, cores)
    return min(threads, cores)


def _profiler(kind: str | None, folder: str | None) -> Any:
    """Lightning's profiler ``kind`` (``trainer.profiler``), writing its report as ``profile-*.txt``
    in ``folder`` (the training's; the current folder when it has none)."""
    if kind is None:
        return None
    from pytorch_lightning import profilers

    classes = {
        "simple": profilers.SimpleProfiler,
        "advanced": profilers.AdvancedProfiler,
        "pytorch": profilers.PyTorchProfiler,
    }
    return classes[kind](dirpath=folder or ".", filename="profile")
