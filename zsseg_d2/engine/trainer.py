"""``Trainer``: Detectron2's ``DefaultTrainer`` with zsseg_d2's data, optimizer and evaluation.

Differences from ``DefaultTrainer``: the zero-shot training mapper and an image-only test mapper,
an epoch schedule (``SOLVER.EPOCHS``), a model's ``before_training`` pass over the training images,
batches in pinned memory for a GPU (``DATALOADER.PIN_MEMORY``), mixed precision in float16 or
bfloat16 (``SOLVER.AMP.PRECISION``),
AdamW with a backbone multiplier and a poly schedule, DDP that also works on CPU processes (gloo),
atomically written checkpoints that include the optimizer, a stop naming the iteration on a NaN
loss, and evaluation that switches the model's vocabulary to each evaluated data set's class names
(open vocabulary) and prints one table over all of them.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import OrderedDict

import torch
from detectron2.config import CfgNode
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.data.common import AspectRatioGroupedDataset
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, create_ddp_model
from detectron2.engine.train_loop import HookBase, TrainerBase
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

from ..data import InferenceImageMapper, build_dataset_mapper, training_dataset_dicts
from ..evaluation import (
    TRANSFER_SETS,
    build_evaluator,
    evaluation_vocabulary,
    format_gzs3_table,
    format_transfer_table,
)
from .checkpoint import Checkpointer
from .solver import build_lr_scheduler, build_optimizer, with_epoch_schedule
from .stage_weights import check_stage_weights

logger = logging.getLogger(__name__)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


AMP_PRECISIONS = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def amp_precision(cfg: CfgNode) -> torch.dtype | None:
    """The autocast dtype of SOLVER.AMP (None: float32). float16 (the default, for any CUDA GPU)
    runs on CUDA only: on the CPU the same config trains in float32; bfloat16 runs where the
    device supports it (Ampere and later GPUs, the CPU)."""
    if not cfg.SOLVER.AMP.ENABLED:
        return None
    name = cfg.SOLVER.AMP.PRECISION
    if name not in AMP_PRECISIONS:
        raise ValueError(
            f"SOLVER.AMP.PRECISION must be one of {sorted(AMP_PRECISIONS)}, got {name!r}"
        )
    if cfg.MODEL.DEVICE == "cpu" and name == "float16":
        logger.warning(
            "SOLVER.AMP.ENABLED is ignored on the CPU with SOLVER.AMP.PRECISION float16: training "
            "in float32"
        )
        return None
    if name == "bfloat16" and cfg.MODEL.DEVICE != "cpu" and torch.cuda.is_available():
        if not torch.cuda.is_bf16_supported():
            raise ValueError(
                f"SOLVER.AMP.PRECISION bfloat16: {torch.cuda.get_device_name()} does not support "
                "bfloat16; use float16"
            )
    return AMP_PRECISIONS[name]


class MixedPrecisionTrainer(AMPTrainer):
    """Detectron2's AMPTrainer with the autocast dtype as an option, on any device: float16 with
    loss scaling (a GradScaler), bfloat16 without (its exponent range is float32's)."""

    def __init__(self, model, data_loader, optimizer, precision: torch.dtype, device_type: str):
        scaler = torch.amp.GradScaler(device_type, enabled=precision == torch.float16)
        super().__init__(model, data_loader, optimizer, grad_scaler=scaler)
        self.precision, self.device_type = precision, device_type

    def run_step(self) -> None:
        assert self.model.training, "[MixedPrecisionTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start
        with torch.autocast(self.device_type, dtype=self.precision):
            loss_dict = self.model(data)
            if isinstance(loss_dict, torch.Tensor):
                loss_dict = {"total_loss": loss_dict}
            losses = sum(loss_dict.values())
        self.optimizer.zero_grad()
        self.grad_scaler.scale(losses).backward()
        self._write_metrics(loss_dict, data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def load_state_dict(self, state_dict: dict) -> None:
        """Also a checkpoint of another precision: a scaler state only where both scale."""
        SimpleTrainer.load_state_dict(self, state_dict)
        if self.grad_scaler.is_enabled() and state_dict.get("grad_scaler"):
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])


def _group_count(optimizer_state: dict) -> int:
    """Parameter groups in an optimizer's (or a JointOptimizer's two optimizers') state dict."""
    if "param_groups" in optimizer_state:
        return len(optimizer_state["param_groups"])
    return sum(len(state["param_groups"]) for state in optimizer_state.values())


class BeforeTraining(HookBase):
    """Calls the model's ``before_training(data_loader)``, if it has one, once the weights are
    loaded: a method that needs a pass over the training data first (SIGN's ST thresholds) gets
    a function returning a loader of the training images (test-time resizing, training labels)."""

    def __init__(self, cfg: CfgNode):
        self.cfg = cfg

    def before_train(self) -> None:
        prepare = getattr(unwrap(self.trainer.model), "before_training", None)
        if prepare is not None:
            prepare(lambda: Trainer.build_data_pass_loader(self.cfg))


class Trainer(DefaultTrainer):
    def __init__(self, cfg: CfgNode):
        TrainerBase.__init__(self)
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        if cfg.SOLVER.EPOCHS > 0:  # SOLVER.MAX_ITER from the training images left by the protocol
            cfg = with_epoch_schedule(cfg, len(training_dataset_dicts(cfg)))
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        on_cpu = cfg.MODEL.DEVICE == "cpu"
        model = create_ddp_model(
            model, broadcast_buffers=False, device_ids=None if on_cpu else [comm.get_local_rank()]
        )
        precision = amp_precision(cfg)
        if precision is None:
            self._trainer = SimpleTrainer(model, data_loader, optimizer)
        else:
            device_type = torch.device(cfg.MODEL.DEVICE).type
            self._trainer = MixedPrecisionTrainer(
                model, data_loader, optimizer, precision, device_type
            )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = Checkpointer(
            model,
            cfg.OUTPUT_DIR,
            accept_text_mismatch=cfg.MODEL.SEMANTIC.ACCEPT_CHECKPOINT_MISMATCH,
            trainer=weakref.proxy(self),
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def resume_or_load(self, resume: bool = True) -> None:
        """Detectron2's; a fresh start first checks that an earlier stage's MODEL.WEIGHTS exist."""
        if not (resume and self.checkpointer.has_checkpoint()):
            check_stage_weights(
                self.cfg, getattr(unwrap(self.model), "starts_from_earlier_stage", False)
            )
        super().resume_or_load(resume=resume)

    def state_dict(self) -> dict:
        """Iteration, hook states (the LR scheduler) and, unlike Detectron2 0.6, the optimizer."""
        state = super().state_dict()
        state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        saved, built = _group_count(state["optimizer"]), len(self.optimizer.param_groups)
        if saved != built:  # the LR scheduler's state would then set the wrong rates
            raise ValueError(
                f"the checkpoint's optimizer has {saved} parameter groups, this run's {built} "
                "(checkpoints written before the groups were merged have one per parameter): it "
                "cannot be resumed. Start a new run from its weights (MODEL.WEIGHTS <checkpoint>, "
                "without --resume, in a new OUTPUT_DIR), or resume with the version that wrote it"
            )
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])

    def run_step(self) -> None:
        """Detectron2's step; a non-finite loss stops training with the iteration and what to do."""
        try:
            super().run_step()
        except FloatingPointError as error:
            last = (
                self.checkpointer.get_checkpoint_file()
                if self.checkpointer.has_checkpoint()
                else "none"
            )
            raise FloatingPointError(
                f"training stopped at iteration {self.iter}: the loss is not finite ({error}). "
                f"The last checkpoint written before it is {last}. Lower SOLVER.BASE_LR, enable "
                f"SOLVER.CLIP_GRADIENTS or disable SOLVER.AMP, then rerun: with --resume from that checkpoint, "
                f"or from the start if it had already diverged"
            ) from error

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        dataset = training_dataset_dicts(cfg)  # DATASETS.UNSEEN_IMAGES protocol
        loader = build_detection_train_loader(
            cfg, mapper=build_dataset_mapper(cfg, is_train=True), dataset=dataset
        )
        # Detectron2 0.6 has no pin_memory argument; its DataLoader reads the attribute when
        # iterated (below the aspect-ratio grouping, when on).
        torch_loader = loader.dataset if isinstance(loader, AspectRatioGroupedDataset) else loader
        torch_loader.pin_memory = cfg.DATALOADER.PIN_MEMORY and cfg.MODEL.DEVICE != "cpu"
        return loader

    @classmethod
    def build_data_pass_loader(cls, cfg: CfgNode):
        """One pass over the training images (this process's share), one image per batch, with
        the training mapper's labels and the test-time resizing."""
        return build_detection_test_loader(
            dataset=training_dataset_dicts(cfg), mapper=build_dataset_mapper(cfg, is_train=False)
        )

    def build_hooks(self) -> list[HookBase]:
        return [BeforeTraining(self.cfg), *super().build_hooks()]

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        return build_detection_test_loader(cfg, dataset_name, mapper=InferenceImageMapper(cfg))

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer):
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None):
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def test(cls, cfg: CfgNode, model: torch.nn.Module, evaluators=None) -> dict[str, dict]:
        """Evaluate on every ``DATASETS.TEST`` set with that set's class names, or with
        ``MODEL.VOCABULARY.TEST`` when given (matched to the set's classes by name, any order;
        a missing or extra name is an error); log one table of all results."""
        results = OrderedDict()
        for index, dataset_name in enumerate(cfg.DATASETS.TEST):
            # unseen: the names that are not seen classes of the training data
            unwrap(model).set_vocabulary(evaluation_vocabulary(cfg, dataset_name))
            evaluator = evaluators[index] if evaluators else cls.build_evaluator(cfg, dataset_name)
            results[dataset_name] = inference_on_dataset(
                model, cls.build_test_loader(cfg, dataset_name), evaluator
            )
            if comm.is_main_process():
                logger.info(f"Evaluation results for {dataset_name} in csv format:")
                print_csv_format(results[dataset_name])
        if comm.is_main_process() and results:
            logger.info("Results:\n" + format_gzs3_table(results))
            if any(name in results for name in TRANSFER_SETS.values()):
                logger.info("Open-vocabulary transfer:\n" + format_transfer_table(results))
        return results
