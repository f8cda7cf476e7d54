"""Where CEL's unseen classes go on the drawn COCO-Stuff scenes: the model alone, then why.

For a checkpoint of ``configs/cel/tiny/scenes*.yaml`` (data: ``datasets/prepare_scenes.py``):
GZS3 metrics of the model alone (CLIP ensemble off) and, with ``--clip``, with the ensemble; then,
per unseen class u over the images of ``--split`` that hold it (eq. 6's positive images when the
run had UNSEEN_MODE gt), what eq. 4 and eq. 6 see:

- ``rank r*``: the rank of r*_u (u's largest cosine over the N queries, eq. 6) among all classes;
  1 means the ranking loss is satisfied for u;
- ``p_u``: p_q(u) of that query (a query left unmatched is pushed to uniform, 1/C, by eq. 5's KL);
- ``area`` and ``covers``: the share of the image that query's mask covers, and of u's pixels;
- ``eq4 acc`` and ``eq4 label``: the share of u's pixels eq. 4 labels u, and its commonest label.

    python benchmarks/bench_scenes_transfer.py --weights output/scenes/stage3_gt/model_final.pth \
        [--clip output/scenes/clip/clip.pt] [--split zsseg_scenes_train] [--images 60] [KEY VALUE ...]
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog, MetadataCatalog

from zsseg_d2.data.sem_seg_io import load_sem_seg, read_image
from zsseg_d2.engine import Trainer, load_config
from zsseg_d2.engine.checkpoint import load_trained_weights

CONFIG = "configs/cel/tiny/scenes.yaml"


def gzs3(weights: str, clip: str | None, opts: list[str]) -> None:
    for ensemble in [False, True] if clip else [False]:
        extra = ["MODEL.CLIP.PRETRAINED", clip] if clip else []
        cfg = load_config(
            CONFIG, ["MODEL.WEIGHTS", weights, "MODEL.CLIP.ENSEMBLE", str(ensemble), *extra, *opts]
        )
        model = Trainer.build_model(cfg).eval()
        load_trained_weights(model, weights)
        for name, result in Trainer.test(cfg, model).items():
            r = result["sem_seg"]
            unseen = MetadataCatalog.get(name).unseen_classes
            per_class = " ".join(f"{u} {r['IoU-' + u]:.1f}" for u in unseen)
            print(
                f"{name} ensemble {'on ' if ensemble else 'off'}: mIoU(S) {r['mIoU(S)']:.1f} "
                f"mIoU(U) {r['mIoU(U)']:.1f} hIoU {r['hIoU']:.1f} | {per_class}"
            )


@torch.no_grad()
def unseen_queries(weights: str, split: str, images: int, opts: list[str]) -> None:
    cfg = load_config(CONFIG, ["MODEL.WEIGHTS", weights, "MODEL.CLIP.ENSEMBLE", "False", *opts])
    model = Trainer.build_model(cfg).eval()
    load_trained_weights(model, weights)
    metadata = MetadataCatalog.get(split)
    names = list(metadata.stuff_classes)
    model.set_vocabulary(names)
    rows: dict[str, list] = {u: [] for u in metadata.unseen_classes}
    for record in DatasetCatalog.get(split)[:images]:
        image = read_image(record["file_name"], "RGB")
        label = load_sem_seg(record["sem_seg_file_name"], metadata)
        size = label.shape
        x = {"image": torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))}
        outputs, _ = model._predict([{**x, "height": size[0], "width": size[1]}])
        model._classify(outputs, model.test_text_embeddings)
        probs = outputs["pred_logits"][0].softmax(-1)
        similarity = outputs["pred_similarity"][0]
        masks = F.interpolate(outputs["pred_masks"], size=size, mode="bilinear")[0].sigmoid()
        labels = torch.einsum("qc,qhw->chw", probs, masks).argmax(0).numpy()
        best = similarity.max(0).values
        for u in rows:
            c = names.index(u)
            region = label == c
            if region.sum() < 50:
                continue
            q = int(similarity[:, c].argmax())
            rows[u].append(
                (
                    int((best > best[c]).sum()) + 1,
                    float(probs[q, c]),
                    float((masks[q] > 0.5).float().mean()),
                    float(masks[q][torch.from_numpy(region)].mean()),
                    float((labels[region] == c).mean()),
                    names[Counter(labels[region].tolist()).most_common(1)[0][0]],
                )
            )
    print(f"{split}, {len(names)} classes (uniform p = {1 / len(names):.3f}):")
    for u, values in rows.items():
        if not values:
            continue
        mean = np.array([v[:5] for v in values]).mean(0)
        label = Counter(v[5] for v in values).most_common(1)[0][0]
        print(
            f"  {u:>10s} ({len(values)} images): rank r* {mean[0]:.1f}, p_u {mean[1]:.2f}, "
            f"area {mean[2]:.2f}, covers {mean[3]:.2f}, eq4 acc {mean[4]:.2f}, eq4 label {label}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="a scenes checkpoint of CEL")
    parser.add_argument("--clip", help="the locked-text small CLIP (ensemble and pseudo labels)")
    parser.add_argument("--split", default="zsseg_scenes_train", help="images to diagnose")
    parser.add_argument("--images", type=int, default=60, help="how many of them")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides (KEY VALUE ...)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    gzs3(args.weights, args.clip, args.opts)
    unseen_queries(args.weights, args.split, args.images, args.opts)


if __name__ == "__main__":
    main()
