"""The contract between a zero-shot segmentation model and the rest of zsseg_d2, and what every
method shares.

The trainer, the checkpointer, the evaluator and the tools rely on these members of a model, all
provided by :class:`ZeroShotSegmentor` (``docs/architecture.md`` describes the contract):

- ``forward(batched_inputs)``: a dict of losses in training mode; in eval mode one dict per image
  with ``"sem_seg"`` ``[C, height, width]`` scores and/or ``"sem_seg_label"`` ``[height, width]``
  ids into ``test_vocabulary``;
- ``set_vocabulary(names, unseen_classes=None)``: the classes to predict from now on;
- ``text_record()``: the text-side settings saved in checkpoints and compared on load;
- ``starts_from_earlier_stage``: whether training needs an earlier stage's ``MODEL.WEIGHTS``;
- ``label_map_only``: a hint that inference may skip dense scores (set by the predictor).

A method subclasses :class:`ZeroShotSegmentor`, adds its parts in ``from_config`` on top of
:meth:`ZeroShotSegmentor.base_config`, and writes only ``losses`` and ``inference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_backbone
from detectron2.modeling.backbone import Backbone
from detectron2.modeling.postprocessing import sem_seg_postprocess
from detectron2.structures import ImageList
from torch import nn

from ..data.splits import unseen_class_ids
from ..data.vocabulary import training_vocabulary
from .clip.ensemble import unseen_class_mask
from .semantic import SemanticSource, build_semantic_source, validate_class_names
from .semantic.record import vocabulary_entry


@dataclass(frozen=True)
class ClassSplit:
    """The classes a model is trained with and which of them are unseen.

    ``vocabulary`` is what the ids of training labels index; ``seen`` and ``unseen`` are the
    ``stuff_classes`` of the data set that defines the split (``metadata.unseen_classes``), and
    ``from_training_data`` says whether that data set is a training set (``DATASETS.TRAIN``) or,
    for evaluation-only runs, a test set."""

    vocabulary: tuple[str, ...]
    seen: tuple[str, ...]
    unseen: tuple[str, ...]
    from_training_data: bool

    @property
    def unseen_ids(self) -> list[int]:
        """Indices into ``vocabulary`` of the unseen classes."""
        unseen = set(self.unseen)
        return [i for i, name in enumerate(self.vocabulary) if name in unseen]

    @property
    def seen_ids(self) -> list[int]:
        unseen = set(self.unseen_ids)
        return [i for i in range(len(self.vocabulary)) if i not in unseen]


def class_split(cfg: CfgNode) -> ClassSplit:
    """The one reading of a config's classes: the training vocabulary
    (:func:`~zsseg_d2.data.vocabulary.training_vocabulary`) and the split of the first training
    set, or of the first test set when there is no training set."""
    datasets = cfg.DATASETS.TRAIN or cfg.DATASETS.TEST
    if not datasets:
        raise ValueError(
            "no data set in DATASETS.TRAIN or DATASETS.TEST: the model's classes and split come from one"
        )
    metadata = MetadataCatalog.get(datasets[0])
    unseen_ids = set(unseen_class_ids(metadata))
    classes = list(metadata.stuff_classes)
    return ClassSplit(
        vocabulary=tuple(training_vocabulary(cfg)),
        seen=tuple(name for i, name in enumerate(classes) if i not in unseen_ids),
        unseen=tuple(classes[i] for i in sorted(unseen_ids)),
        from_training_data=bool(cfg.DATASETS.TRAIN),
    )


def test_vocabulary(cfg: CfgNode, split: ClassSplit) -> list[str]:
    """``MODEL.VOCABULARY.TEST``, else the first test set's classes, else the training vocabulary."""
    if cfg.MODEL.VOCABULARY.TEST:
        return list(cfg.MODEL.VOCABULARY.TEST)
    if cfg.DATASETS.TEST:
        return list(MetadataCatalog.get(cfg.DATASETS.TEST[0]).stuff_classes)
    return list(split.vocabulary)


class ZeroShotSegmentor(nn.Module):
    """Base of every method: pixel normalisation and padding, the class split, the semantic
    source and the train / test vocabularies, postprocessing, frozen modules, stages and the
    checkpoint's text record.

    Class attributes a method sets:

    - ``STAGES``: the values of ``MODEL.STAGE`` it accepts, in training order; "" means the first.
      A stage after the first starts from the previous stage's weights.
    - ``OPEN_VOCABULARY``: True when any class name can be scored at inference (the classifier is
      the semantic space); False when the classifier has one output per training class, so the
      evaluation vocabulary must be a subset of the training vocabulary.
    """

    STAGES: tuple[str, ...] = ("",)
    OPEN_VOCABULARY: bool = True

    def __init__(
        self,
        *,
        backbone: Backbone,
        semantic_source: SemanticSource,
        split: ClassSplit,
        test_vocabulary: Sequence[str],
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        stage: str = "",
        ignore_value: int = 255,
    ):
        super().__init__()
        self.backbone = backbone
        self.semantic_source = semantic_source
        self.split = split
        self.train_vocabulary = validate_class_names(split.vocabulary, "the training vocabulary")
        self.stage = self.checked_stage(stage)
        self.ignore_value = ignore_value
        self.label_map_only = False
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self._frozen_in_eval: list[nn.Module] = []
        self._encoded: dict[str, tuple[list[str], torch.Tensor]] = {}
        self._initial_test_vocabulary = list(test_vocabulary)

    @classmethod
    def base_config(cls, cfg: CfgNode) -> dict:
        """The shared constructor arguments: a method's ``from_config`` adds its own to these."""
        split = class_split(cfg)
        return {
            "backbone": build_backbone(cfg),
            "semantic_source": build_semantic_source(cfg),
            "split": split,
            "test_vocabulary": test_vocabulary(cfg, split),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "stage": cfg.MODEL.STAGE,
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
        }

    @classmethod
    def checked_stage(cls, stage: str) -> str:
        """``stage`` ("" = the first) checked against ``STAGES``."""
        stage = stage or cls.STAGES[0]
        if stage not in cls.STAGES:
            raise ValueError(
                f"MODEL.STAGE {stage!r} is not a stage of {cls.__name__}; its stages are "
                f"{[s for s in cls.STAGES if s] or ['(one stage: leave MODEL.STAGE empty)']}"
            )
        return stage

    def init_vocabulary(self) -> None:
        """Apply the configured evaluation vocabulary; call at the end of a method's ``__init__``
        (once its parts exist)."""
        self.set_vocabulary(self._initial_test_vocabulary)

    # ---- the contract ----------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def starts_from_earlier_stage(self) -> bool:
        return self.STAGES.index(self.stage) > 0

    def forward(self, batched_inputs: list[dict]):
        return self.losses(batched_inputs) if self.training else self.inference(batched_inputs)

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        raise NotImplementedError

    def set_vocabulary(
        self, class_names: Sequence[str], unseen_classes: Sequence[str] | None = None
    ) -> None:
        """Predict ``class_names`` from now on. ``unseen_classes`` (default: the names that are
        not a seen class of the split) set ``test_unseen``, for the methods that treat unseen
        classes apart at inference."""
        names = validate_class_names(class_names, "the evaluation vocabulary")
        if not self.OPEN_VOCABULARY:
            unknown = [name for name in names if name not in self.train_vocabulary]
            if unknown:
                raise ValueError(
                    f"{type(self).__name__}'s classifier has one output per training class "
                    f"{self.train_vocabulary}; it cannot score {unknown}. Evaluate on a data set "
                    "whose classes are among the training classes"
                )
        if unseen_classes is None:
            unseen_classes = self.names_not_seen(names)
        self.test_vocabulary = names
        self.test_unseen = unseen_class_mask(names, unseen_classes)
        self.vocabulary_changed()

    def vocabulary_changed(self) -> None:
        """Hook run after :meth:`set_vocabulary`. Without an open vocabulary: ``test_class_ids``,
        the classifier outputs of the evaluation vocabulary's names, in its order."""
        if not self.OPEN_VOCABULARY:
            ids = [self.train_vocabulary.index(name) for name in self.test_vocabulary]
            self.test_class_ids = torch.tensor(ids, dtype=torch.long, device=self.device)

    def names_not_seen(self, class_names: Sequence[str]) -> list[str]:
        """The names that are not seen classes of the split's data set."""
        seen = set(self.split.seen)
        return [name for name in class_names if name not in seen]

    def text_record(self) -> dict[str, dict[str, str]]:
        """What determines the class vectors (``settings_record`` of the semantic source) and the
        training vocabulary, each as {"value", "identity"}: saved in checkpoints, compared on load."""
        record = dict(self.semantic_source.settings_record())
        record["training vocabulary"] = vocabulary_entry(self.train_vocabulary)
        return record

    # ---- shared parts ----------------------------------------------------------------------

    @property
    def train_class_vectors(self) -> torch.Tensor:
        """Class vectors of the training vocabulary ``[C, D]``, computed on first use."""
        return self._class_vectors("train", self.train_vocabulary)

    @property
    def test_class_vectors(self) -> torch.Tensor:
        """Class vectors of the evaluation vocabulary, computed on first use."""
        return self._class_vectors("test", self.test_vocabulary)

    def _class_vectors(self, role: str, names: list[str]) -> torch.Tensor:
        encoded_names, vectors = self._encoded.get(role, (None, None))
        if encoded_names != names:
            vectors = self.semantic_source(names).float()
        self._encoded[role] = (names, vectors.to(self.device))
        return self._encoded[role][1]

    def preprocess(self, batched_inputs: list[dict]) -> ImageList:
        """Images normalised by the pixel mean and std, padded to the backbone's divisibility."""
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        return ImageList.from_tensors(images, self.backbone.size_divisibility)

    def padded_labels(self, batched_inputs: list[dict], images: ImageList) -> torch.Tensor:
        """``sem_seg`` of each input padded like ``images`` with the ignore value: ``[B, H, W]``."""
        size = (len(batched_inputs), *images.tensor.shape[-2:])
        labels = torch.full(size, self.ignore_value, dtype=torch.long, device=self.device)
        for i, x in enumerate(batched_inputs):
            h, w = x["sem_seg"].shape[-2:]
            labels[i, :h, :w] = x["sem_seg"].to(self.device)
        return labels

    @staticmethod
    def output_size(images: ImageList, index: int, x: dict) -> tuple[int, int]:
        """The size the prediction of image ``index`` is returned at (its original size)."""
        h, w = images.image_sizes[index]
        return x.get("height", h), x.get("width", w)

    def postprocess(
        self, scores: torch.Tensor, images: ImageList, index: int, x: dict
    ) -> torch.Tensor:
        """Scores ``[C, H, W]`` of the padded image ``index`` cropped to the image and resized to
        its output size (Detectron2's ``sem_seg_postprocess``)."""
        return sem_seg_postprocess(
            scores, images.image_sizes[index], *self.output_size(images, index, x)
        )

    def freeze(self, *modules: nn.Module, eval_mode: bool = True) -> None:
        """No gradients for ``modules``; with ``eval_mode`` they also stay in eval mode (frozen
        normalisation statistics, no dropout) while the rest trains."""
        for module in modules:
            module.requires_grad_(False)
            if eval_mode:
                self._frozen_in_eval.append(module)

    def train(self, mode: bool = True) -> ZeroShotSegmentor:
        super().train(mode)
        for module in self._frozen_in_eval:
            module.eval()
        return self

    @staticmethod
    def zero_loss(*modules: nn.Module) -> torch.Tensor:
        """0 that depends on every parameter of ``modules``: a loss with nothing to learn from in
        this batch still reaches them, which keeps DDP's graph whole."""
        return sum(p.sum() for module in modules for p in module.parameters()) * 0.0
