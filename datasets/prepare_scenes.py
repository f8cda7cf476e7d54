"""Draw the COCO-Stuff scenes (``zsseg_d2/data/scenes.py``) into $DETECTRON2_DATASETS/zsseg_scenes.

Nine seen and four unseen COCO-Stuff classes; each unseen class is drawn like a seen neighbour that
is close to it in CLIP ViT-B/16 text space (clouds / sky-other, river / sea, cow / sheep,
skateboard / surfboard). Registered as ``zsseg_scenes_{train,val}``; the CEL recipe is in
``configs/cel/tiny/scenes*.yaml``. Prints each designed pair's text cosine and its rank among all
pairs of COCO-Stuff names.

    python datasets/prepare_scenes.py [--train 300] [--val 60] [--seed 0] [--size 128]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from zsseg_d2.data.scenes import SCENES, neighbour_report
from zsseg_d2.data.synthetic import generate

CLIP_TEXT = (
    Path(__file__).resolve().parents[1] / "zsseg_d2/data/embeddings/coco_stuff_171.vitb16.multi.npy"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=300, help="training images")
    parser.add_argument("--val", type=int, default=60, help="validation images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128, help="image height and width")
    parser.add_argument(
        "--root",
        default=os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "zsseg_scenes"),
        help="output folder (default $DETECTRON2_DATASETS/zsseg_scenes)",
    )
    args = parser.parse_args()
    generate(args.root, args.train, args.val, args.seed, (args.size, args.size), SCENES)
    print(f"zsseg_scenes: {args.train} train / {args.val} val images in {args.root}")
    for row in neighbour_report(CLIP_TEXT):
        print(
            f"  {row['unseen']:>10s} ~ {row['seen']:<10s} cosine {row['cosine']:.3f}, "
            f"rank {row['rank']} of {row['pairs']} pairs"
        )


if __name__ == "__main__":
    main()
