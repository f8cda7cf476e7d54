"""The Seenmask Zero-shot Network (Doshi 2018, "Zero-Shot Semantic Segmentation", sections 4-6).

An FCN-32s on VGG-16 maps each pixel to a visual embedding in the j-dimensional semantic space
(visual-embedding head) and decides whether it belongs to a seen class (seenmask head). Training
has two steps (section 5.1), ``MODEL.STAGE`` "embedding" and "seenmask": step 1 trains the FCN
and the embedding head on train_seen pixels with the pixelwise cosine loss (eq. 6; MSE, eq. 4, as
an option); step 2 freezes the FCN and trains the seenmask head with pixelwise cross-entropy
(eq. 3): 1 for train_seen pixels, 0 for train_unseen.
Inference (SEI, section 4.4): the nearest seen and the nearest unseen class embedding by cosine,
picked per pixel by the seenmask, with unseen = U plus train_unseen (section 5.1.1).

The thesis's comparison models are variants (``MODEL.SZN.VARIANT``, section 6.3): "fcn_s" (softmax
over the seen classes, no zero-shot), "fcn_je" (nearest embedding over all classes, no seenmask),
"szn", and "szn_ps" (the seenmask taken from the ground truth, an oracle).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, configurable
from detectron2.data import Metadata, MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, SEM_SEG_HEADS_REGISTRY
from torch import nn

from ...data import load_sem_seg
from ...modeling.segmentor import ZeroShotSegmentor
from .losses import pixelwise_cosine_loss, pixelwise_mse_loss, seenmask_bce_loss

VARIANTS = ("fcn_s", "fcn_je", "szn", "szn_ps")
EMBEDDING_LOSSES = {"cosine": pixelwise_cosine_loss, "mse": pixelwise_mse_loss}
# SEI as dense scores: the seenmask's group gets this bonus, larger than any cosine gap (<= 2), so
# the argmax is the nearest class of that group, and within one group the order is the cosine's.
GROUP_BONUS = 4.0


def _label_lut(mapping: dict[int, int], ignore_value: int) -> torch.Tensor:
    lut = torch.full((256,), ignore_value, dtype=torch.long)
    for source, target in mapping.items():
        lut[source] = target
    return lut


def _check_config(cfg: CfgNode, stage: str) -> None:
    szn = cfg.MODEL.SZN
    if szn.VARIANT not in VARIANTS:
        raise ValueError(f"MODEL.SZN.VARIANT must be one of {VARIANTS}, got {szn.VARIANT!r}")
    if szn.LOSS not in EMBEDDING_LOSSES:
        raise ValueError(
            f"MODEL.SZN.LOSS must be one of {sorted(EMBEDDING_LOSSES)}, got {szn.LOSS!r}"
        )
    if stage == "seenmask" and szn.VARIANT != "szn":
        raise ValueError(
            f"MODEL.STAGE 'seenmask' with MODEL.SZN.VARIANT {szn.VARIANT!r}: step 2 (the seenmask "
            "head) exists only for 'szn'; other variants train in the 'embedding' stage"
        )
    if szn.VARIANT in ("szn", "szn_ps") and not szn.TRAIN_UNSEEN:
        raise ValueError(
            f"MODEL.SZN.VARIANT {szn.VARIANT!r} needs MODEL.SZN.TRAIN_UNSEEN: seen classes held out as "
            "the seenmask's unseen examples"
        )
    if cfg.DATASETS.TRAIN and cfg.DATASETS.UNSEEN_IMAGES == "drop" and szn.VARIANT != "fcn_s":
        expected = set(szn.TRAIN_UNSEEN) if stage == "embedding" else set()
        if set(cfg.DATASETS.DROP_CLASSES) != expected:
            pixels = "train_seen" if stage == "embedding" else "train_seen or train_unseen"
            raise ValueError(
                f"SZN stage {stage!r} with DATASETS.UNSEEN_IMAGES 'drop' trains on images whose pixels "
                f"are all {pixels} (section 5.1): set DATASETS.DROP_CLASSES to {sorted(expected)}, "
                f"got {list(cfg.DATASETS.DROP_CLASSES)}"
            )


@META_ARCH_REGISTRY.register()
class SZN(ZeroShotSegmentor):
    """FCN-32s + visual-embedding / seenmask heads, scored against class vectors (SZN)."""

    STAGES = ("embedding", "seenmask")

    @configurable
    def __init__(
        self,
        *,
        head: nn.Module,
        train_unseen: list[str],
        variant: str = "szn",
        loss: str = "cosine",
        oracle_metadata: list[Metadata] = (),
        **base,
    ):
        super().__init__(**base)
        self.head = head
        self.variant, self.embedding_loss = variant, EMBEDDING_LOSSES[loss]
        self.oracle_metadata = list(oracle_metadata)
        self.seen_classes, self.train_unseen = list(self.split.seen), list(train_unseen)
        unknown = [n for n in [*self.seen_classes, *train_unseen] if n not in self.train_vocabulary]
        if unknown or not set(train_unseen) <= set(self.seen_classes):
            raise ValueError(
                f"MODEL.SZN.TRAIN_UNSEEN {list(train_unseen)} must be seen classes of the training data "
                f"(seen: {self.seen_classes})"
            )
        self._build_label_maps()
        if self.stage == "seenmask":  # frozen feature extractors (section 5.1.3)
            self.freeze(self.backbone)
            self.freeze(self.head.heads["embedding"], eval_mode=False)
        self.init_vocabulary()

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        args = cls.base_config(cfg)
        _check_config(cfg, cls.checked_stage(args["stage"]))
        backbone = args["backbone"]
        num_classes = len(args["split"].seen) if cfg.MODEL.SZN.VARIANT == "fcn_s" else 0
        head = SEM_SEG_HEADS_REGISTRY.get(cfg.MODEL.SEM_SEG_HEAD.NAME)(
            cfg, backbone.output_shape(), args["semantic_source"].dim, num_classes
        )
        return {
            **args,
            "head": head,
            "train_unseen": list(cfg.MODEL.SZN.TRAIN_UNSEEN),
            "variant": cfg.MODEL.SZN.VARIANT,
            "loss": cfg.MODEL.SZN.LOSS,
            "oracle_metadata": [MetadataCatalog.get(name) for name in cfg.DATASETS.TEST],
        }

    def _build_label_maps(self) -> None:
        """Training label id -> target: the embedding loss's class (train_seen only), the
        seenmask (1 train_seen, 0 train_unseen) and the softmax baseline's class (all seen)."""
        index = {name: i for i, name in enumerate(self.train_vocabulary)}
        train_seen = [n for n in self.seen_classes if n not in self.train_unseen]
        luts = {
            "embedding_lut": {index[n]: index[n] for n in train_seen},
            "seenmask_lut": {index[n]: 1 for n in train_seen}
            | {index[n]: 0 for n in self.train_unseen},
            "softmax_lut": {index[n]: i for i, n in enumerate(self.seen_classes)},
        }
        for name, mapping in luts.items():
            self.register_buffer(name, _label_lut(mapping, self.ignore_value), persistent=False)

    def vocabulary_changed(self) -> None:
        """SEI's unseen group is ``test_unseen`` (default: the names that are not seen training
        classes) plus train_unseen; the seen group is the rest."""
        train_unseen = set(self.train_unseen)
        seen_group = [
            not (unseen or name in train_unseen)
            for name, unseen in zip(self.test_vocabulary, self.test_unseen.tolist())
        ]
        self.test_seen_group = torch.tensor(seen_group, device=self.device)

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """{"loss_embedding"} (stage "embedding"), {"loss_seenmask"} ("seenmask") or {"loss_ce"} (FCN-S)."""
        images = self.preprocess(batched_inputs)
        outputs = self.head(self.backbone(images.tensor))
        labels = self.padded_labels(batched_inputs, images)
        if self.variant == "fcn_s":
            logits = outputs["class_logits"]
            return {
                "loss_ce": F.cross_entropy(
                    logits, self.softmax_lut[labels], ignore_index=self.ignore_value
                )
            }
        if self.stage == "seenmask":
            return {
                "loss_seenmask": seenmask_bce_loss(
                    outputs["seenmask"], self.seenmask_lut[labels], self.ignore_value
                )
            }
        targets = self.embedding_lut[labels]
        return {
            "loss_embedding": self.embedding_loss(
                outputs["embedding"], targets, self.train_class_vectors, self.ignore_value
            )
        }

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        """Per image {"sem_seg": [C, height, width] scores} whose argmax is SEI's label."""
        images = self.preprocess(batched_inputs)
        outputs = self.head(self.backbone(images.tensor))
        results = []
        for i, x in enumerate(batched_inputs):
            image_outputs = {k: self.postprocess(v[i], images, i, x) for k, v in outputs.items()}
            results.append({"sem_seg": self._scores(image_outputs, x)})
        return results

    def _scores(self, outputs: dict[str, torch.Tensor], x: dict) -> torch.Tensor:
        """[C, H, W] scores over the evaluation vocabulary (section 4.4)."""
        if self.variant == "fcn_s":
            probs = outputs["class_logits"].softmax(dim=0)
            index = {name: i for i, name in enumerate(self.seen_classes)}
            scores = probs.new_zeros((len(self.test_vocabulary), *probs.shape[1:]))  # unseen: never
            for c, name in enumerate(self.test_vocabulary):
                if name in index:
                    scores[c] = probs[index[name]]
            return scores
        embedding = F.normalize(outputs["embedding"], dim=0)
        vectors = F.normalize(self.test_class_vectors, dim=1)
        cosine = torch.einsum("jhw,cj->chw", embedding, vectors)
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
        label = load_sem_seg(x["sem_seg_file_name"], metadata).astype("int64")
        label = torch.as_tensor(label, device=self.device)
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
