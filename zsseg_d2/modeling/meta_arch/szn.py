"""The Seenmask Zero-shot Network (Doshi 2018, "Zero-Shot Semantic Segmentation", sections 4-6).

An FCN-32s on VGG-16 maps each pixel to a visual embedding in the j-dimensional semantic space
(visual-embedding head) and decides whether it belongs to a seen class (seenmask head). Training
has two steps (section 5.1): step 1 trains the FCN and the embedding head on train_seen pixels with
the pixelwise cosine loss (eq. 6; MSE, eq. 4, as an option); step 2 freezes the FCN and trains the
seenmask head with pixelwise cross-entropy (eq. 3): 1 for train_seen pixels, 0 for train_unseen.
Inference (SEI, section 4.4): the nearest seen and the nearest unseen class embedding by cosine,
picked per pixel by the seenmask, with unseen = U plus train_unseen (section 5.1.1).

The thesis's comparison models are variants (``MODEL.SZN.VARIANT``, section 6.3): "fcn_s" (softmax
over the seen classes, no zero-shot), "fcn_je" (nearest embedding over all classes, no seenmask),
"szn", and "szn_ps" (the seenmask taken from the ground truth, an oracle).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, configurable
from detectron2.data import Metadata, MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, SEM_SEG_HEADS_REGISTRY, build_backbone
from detectron2.modeling.backbone import Backbone
from detectron2.structures import ImageList
from torch import nn

from ...data import load_sem_seg, seen_class_ids, training_vocabulary
from ..losses import pixelwise_cosine_loss, pixelwise_mse_loss, seenmask_bce_loss
from ..semantic import SemanticSource, build_semantic_source, validate_class_names

VARIANTS = ("fcn_s", "fcn_je", "szn", "szn_ps")
EMBEDDING_LOSSES = {"cosine": pixelwise_cosine_loss, "mse": pixelwise_mse_loss}
IGNORE = 255
# SEI as dense scores: the seenmask's group gets this bonus, larger than any cosine gap (<= 2), so
# the argmax is the nearest class of that group, and within one group the order is the cosine's.
GROUP_BONUS = 4.0


def _label_lut(mapping: dict[int, int]) -> torch.Tensor:
    lut = torch.full((256,), IGNORE, dtype=torch.long)
    for source, target in mapping.items():
        lut[source] = target
    return lut


def _check_config(cfg: CfgNode) -> None:
    szn = cfg.MODEL.SZN
    if szn.VARIANT not in VARIANTS:
        raise ValueError(f"MODEL.SZN.VARIANT must be one of {VARIANTS}, got {szn.VARIANT!r}")
    if szn.LOSS not in EMBEDDING_LOSSES:
        raise ValueError(
            f"MODEL.SZN.LOSS must be one of {sorted(EMBEDDING_LOSSES)}, got {szn.LOSS!r}"
        )
    if szn.STEP not in (1, 2) or (szn.STEP == 2 and szn.VARIANT != "szn"):
        raise ValueError(
            f"MODEL.SZN.STEP {szn.STEP} with VARIANT {szn.VARIANT!r}: step 2 (the seenmask head) exists "
            "only for 'szn'; other variants train in step 1"
        )
    if szn.VARIANT in ("szn", "szn_ps") and not szn.TRAIN_UNSEEN:
        raise ValueError(
            f"MODEL.SZN.VARIANT {szn.VARIANT!r} needs MODEL.SZN.TRAIN_UNSEEN: seen classes held out as "
            "the seenmask's unseen examples"
        )
    if szn.STEP == 2 and not cfg.MODEL.WEIGHTS:
        raise ValueError(
            "MODEL.SZN.STEP 2 trains the seenmask head on step 1's frozen FCN: set MODEL.WEIGHTS to "
            "step 1's model_final.pth"
        )
    if szn.STEP == 2 and "://" not in cfg.MODEL.WEIGHTS and not os.path.isfile(cfg.MODEL.WEIGHTS):
        raise FileNotFoundError(
            f"MODEL.WEIGHTS {cfg.MODEL.WEIGHTS!r} (step 1's weights for SZN step 2) does not exist: run step 1 first"
        )
    if cfg.DATASETS.TRAIN and cfg.DATASETS.UNSEEN_IMAGES == "drop" and szn.VARIANT != "fcn_s":
        expected = set(szn.TRAIN_UNSEEN) if szn.STEP == 1 else set()
        if set(cfg.DATASETS.DROP_CLASSES) != expected:
            raise ValueError(
                f"SZN step {szn.STEP} with DATASETS.UNSEEN_IMAGES 'drop' trains on images whose pixels are all "
                f"{'train_seen' if szn.STEP == 1 else 'train_seen or train_unseen'} (section 5.1): set "
                f"DATASETS.DROP_CLASSES to {sorted(expected)}, got {list(cfg.DATASETS.DROP_CLASSES)}"
            )


@META_ARCH_REGISTRY.register()
class SZNSegmentor(nn.Module):
    """FCN-32s + visual-embedding / seenmask heads, scored against class vectors (SZN)."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        head: nn.Module,
        semantic_source: SemanticSource,
        train_vocabulary: Sequence[str],
        seen_classes: Sequence[str],
        train_unseen: Sequence[str],
        test_vocabulary: Sequence[str],
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        variant: str = "szn",
        step: int = 1,
        loss: str = "cosine",
        oracle_metadata: Sequence[Metadata] = (),
    ):
        super().__init__()
        self.backbone, self.head, self.semantic_source = backbone, head, semantic_source
        self.variant, self.step, self.embedding_loss = variant, step, EMBEDDING_LOSSES[loss]
        self.oracle_metadata = list(oracle_metadata)
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.train_vocabulary = validate_class_names(train_vocabulary, "the training vocabulary")
        self.seen_classes, self.train_unseen = list(seen_classes), list(train_unseen)
        unknown = [n for n in [*seen_classes, *train_unseen] if n not in self.train_vocabulary]
        if unknown or not set(train_unseen) <= set(seen_classes):
            raise ValueError(
                f"MODEL.SZN.TRAIN_UNSEEN {list(train_unseen)} must be seen classes of the training data "
                f"(seen: {list(seen_classes)})"
            )
        self.register_buffer(
            "train_class_vectors", semantic_source(self.train_vocabulary), persistent=False
        )
        self._build_label_maps()
        if (
            step == 2
        ):  # the FCN and the embedding head are frozen feature extractors (section 5.1.3)
            for module in (self.backbone, self.head.heads["embedding"]):
                module.requires_grad_(False)
        self.set_vocabulary(test_vocabulary)

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        _check_config(cfg)
        datasets = cfg.DATASETS.TRAIN or cfg.DATASETS.TEST
        if not datasets:
            raise ValueError(
                "SZN needs DATASETS.TRAIN or DATASETS.TEST: the classes and split come from their metadata"
            )
        metadata = MetadataCatalog.get(datasets[0])
        train_vocabulary = (
            training_vocabulary(cfg) if cfg.DATASETS.TRAIN else list(metadata.stuff_classes)
        )
        seen = [metadata.stuff_classes[i] for i in seen_class_ids(metadata)]
        source = build_semantic_source(cfg)
        backbone = build_backbone(cfg)
        num_classes = len(seen) if cfg.MODEL.SZN.VARIANT == "fcn_s" else 0
        head = SEM_SEG_HEADS_REGISTRY.get(cfg.MODEL.SEM_SEG_HEAD.NAME)(
            cfg, backbone.output_shape(), source(train_vocabulary[:1]).shape[1], num_classes
        )
        test_vocabulary = (
            list(MetadataCatalog.get(cfg.DATASETS.TEST[0]).stuff_classes)
            if cfg.DATASETS.TEST
            else train_vocabulary
        )
        return {
            "backbone": backbone,
            "head": head,
            "semantic_source": source,
            "train_vocabulary": train_vocabulary,
            "seen_classes": seen,
            "train_unseen": list(cfg.MODEL.SZN.TRAIN_UNSEEN),
            "test_vocabulary": test_vocabulary,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "variant": cfg.MODEL.SZN.VARIANT,
            "step": cfg.MODEL.SZN.STEP,
            "loss": cfg.MODEL.SZN.LOSS,
            "oracle_metadata": [MetadataCatalog.get(name) for name in cfg.DATASETS.TEST],
        }

    def _build_label_maps(self) -> None:
        """Training label id -> target: the embedding loss's class (train_seen only), the
        seenmask (1 train_seen, 0 train_unseen) and the softmax baseline's class (all seen)."""
        index = {name: i for i, name in enumerate(self.train_vocabulary)}
        train_seen = [n for n in self.seen_classes if n not in self.train_unseen]
        self.register_buffer(
            "embedding_lut", _label_lut({index[n]: index[n] for n in train_seen}), persistent=False
        )
        seenmask = {index[n]: 1 for n in train_seen} | {index[n]: 0 for n in self.train_unseen}
        self.register_buffer("seenmask_lut", _label_lut(seenmask), persistent=False)
        self.register_buffer(
            "softmax_lut",
            _label_lut({index[n]: i for i, n in enumerate(self.seen_classes)}),
            persistent=False,
        )

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def train(self, mode: bool = True) -> SZNSegmentor:
        super().train(mode)
        if self.step == 2:
            self.backbone.eval()  # frozen: no dropout while the seenmask head trains
        return self

    def set_vocabulary(
        self, class_names: Sequence[str], unseen_classes: Sequence[str] | None = None
    ) -> None:
        """Classes to infer among. SEI's unseen group is ``unseen_classes`` (default: the names that
        are not seen training classes) plus train_unseen; the seen group is the rest."""
        self.test_vocabulary = validate_class_names(class_names, "the evaluation vocabulary")
        self.test_class_vectors = self.semantic_source(self.test_vocabulary).to(self.device)
        if unseen_classes is None:
            unseen_classes = [n for n in self.test_vocabulary if n not in self.seen_classes]
        unseen_group = set(unseen_classes) | set(self.train_unseen)
        self.test_seen_group = torch.tensor(
            [n not in unseen_group for n in self.test_vocabulary], device=self.device
        )

    def forward(self, batched_inputs: list[dict]):
        """Training: {"loss_embedding"} (step 1), {"loss_seenmask"} (step 2) or {"loss_ce"} (FCN-S).
        Inference: per image {"sem_seg": [C, height, width] scores} whose argmax is SEI's label."""
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        images = ImageList.from_tensors(images, self.backbone.size_divisibility)
        outputs = self.head(self.backbone(images.tensor))
        if self.training:
            return self._losses(
                outputs, self._padded_labels(batched_inputs, images.tensor.shape[-2:])
            )
        results = []
        for i, ((h, w), x) in enumerate(zip(images.image_sizes, batched_inputs)):
            size = (x.get("height", h), x.get("width", w))
            image_outputs = {k: F.interpolate(v[i : i + 1, :, :h, :w], size=size, mode="bilinear", align_corners=False)[0]
                             for k, v in outputs.items()}  # fmt: skip
            results.append({"sem_seg": self._scores(image_outputs, x)})
        return results

    def _padded_labels(self, batched_inputs: list[dict], padded_size) -> torch.Tensor:
        labels = torch.full(
            (len(batched_inputs), *padded_size), IGNORE, dtype=torch.long, device=self.device
        )
        for i, x in enumerate(batched_inputs):
            h, w = x["sem_seg"].shape[-2:]
            labels[i, :h, :w] = x["sem_seg"].to(self.device)
        return labels

    def _losses(
        self, outputs: dict[str, torch.Tensor], labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if self.variant == "fcn_s":
            return {
                "loss_ce": F.cross_entropy(
                    outputs["class_logits"], self.softmax_lut[labels], ignore_index=IGNORE
                )
            }
        if self.step == 2:
            return {
                "loss_seenmask": seenmask_bce_loss(
                    outputs["seenmask"], self.seenmask_lut[labels], IGNORE
                )
            }
        targets = self.embedding_lut[labels]
        return {
            "loss_embedding": self.embedding_loss(
                outputs["embedding"], targets, self.train_class_vectors, IGNORE
            )
        }

    def _scores(self, outputs: dict[str, torch.Tensor], x: dict) -> torch.Tensor:
        """[C, H, W] scores over the evaluation vocabulary (section 4.4)."""
        if self.variant == "fcn_s":
            probs = outputs["class_logits"].softmax(dim=0)
            index = {name: i for i, name in enumerate(self.seen_classes)}
            scores = probs.new_zeros(
                (len(self.test_vocabulary), *probs.shape[1:])
            )  # unseen: never predicted
            for c, name in enumerate(self.test_vocabulary):
                if name in index:
                    scores[c] = probs[index[name]]
            return scores
        embedding = F.normalize(outputs["embedding"], dim=0)
        cosine = torch.einsum("jhw,cj->chw", embedding, F.normalize(self.test_class_vectors, dim=1))
        if self.variant == "fcn_je":
            return cosine
        seen = (
            outputs["seenmask"].argmax(dim=0) == 1
            if self.variant == "szn"
            else self._oracle_seenmask(x)
        )
        return sei_scores(cosine, self.test_seen_group, seen)

    def _oracle_seenmask(self, x: dict) -> torch.Tensor:
        """SZN-PS: the true seenmask from the image's label file (unlabelled pixels: seen)."""
        metadata = next(
            (m for m in self.oracle_metadata if list(m.stuff_classes) == self.test_vocabulary), None
        )
        if metadata is None or "sem_seg_file_name" not in x:
            raise ValueError(
                "MODEL.SZN.VARIANT 'szn_ps' reads the ground-truth seenmask: evaluate on a DATASETS.TEST set "
                "with its own class names (an image dict with 'sem_seg_file_name')"
            )
        label = torch.as_tensor(
            load_sem_seg(x["sem_seg_file_name"], metadata).astype("int64"), device=self.device
        )
        labelled = label < len(self.test_vocabulary)
        return torch.where(
            labelled, self.test_seen_group[label.clamp(max=len(self.test_vocabulary) - 1)], True
        )


def sei_scores(
    cosine: torch.Tensor, seen_group: torch.Tensor, seenmask: torch.Tensor
) -> torch.Tensor:
    """Seenmask Embedding Inference as scores: ``cosine`` [C, H, W] plus GROUP_BONUS for the classes
    of the group the seenmask [H, W] (True = seen) picks at each pixel; argmax = SEI's label."""
    chosen = seen_group[:, None, None] == seenmask[None]
    return cosine + GROUP_BONUS * chosen.to(cosine.dtype)
