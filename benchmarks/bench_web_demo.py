"""Start-up and time to first result of the web demo (tools/web_demo.py) on CPU.

Each run starts the app in a fresh process on a free loopback port and measures, from the
process's start, the time until it serves (it loads the checkpoint before it serves: start-up),
then sends one request through Gradio's client, as the page does (image and vocabulary in, overlay
and legend out), and measures until the answer is back (first result); then it stops the app. Each
run starts with an empty text-embedding cache, so the vocabulary is encoded in the request.
Start-up is also given as the app's CPU time (all its threads) until it serves. Prints one JSON
object per measure: median, min and max over ``--runs``. Needs the web extra and a
checkpoint (default: `make demo`'s):

    python benchmarks/bench_web_demo.py [--runs 5] [--checkpoint PTH] [--image PNG] [--vocab "a, b"]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "output" / "demo"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--checkpoint", default=str(DEMO / "stage3" / "model_final.pth"))
    parser.add_argument(
        "--image", default=None, help="default: the first validation scene of make demo"
    )
    parser.add_argument(
        "--vocab",
        default=None,
        help="default: the checkpoint's training classes and 'person', a list it has not encoded yet",
    )
    return parser.parse_args()


def one_run(args: argparse.Namespace, image: str) -> tuple[float, float, float]:
    from gradio_client import Client, handle_file

    cache = tempfile.mkdtemp(prefix="bench_web_cache_")  # no text embedding cached from before
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "ZSSEG_CACHE": cache,
    }
    start = time.monotonic()
    app = subprocess.Popen(
        [sys.executable, "tools/web_demo.py", "--port", "0", "--checkpoint", args.checkpoint],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in app.stdout:
            if "web demo running at" in line:
                startup = time.monotonic() - start
                url = line.split(" at ")[1].split()[0]
                startup_cpu = float(line.split(", ")[1].split()[0])  # "..., 12.3 s of CPU)"
                break
        else:
            raise RuntimeError(f"tools/web_demo.py exited with {app.wait()} before serving")
        client = Client(url, verbose=False)
        sent = time.monotonic()
        result = client.predict(
            handle_file(image), args.vocab, args.checkpoint, False, False, "", api_name="/segment"
        )
        first_result = time.monotonic() - sent
        if "zs-ok" not in result[3]:
            raise RuntimeError(f"the request failed: {result[3]}")
        return startup, startup_cpu, first_result
    finally:
        app.terminate()
        app.wait(timeout=30)
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    args = parse_args()
    try:
        import gradio_client  # noqa: F401
    except ImportError:
        sys.exit("bench_web_demo.py needs the web extra: pip install -r requirements-web.txt")
    if not Path(args.checkpoint).is_file():
        sys.exit(f"no checkpoint {args.checkpoint}: run `make demo` first or pass --checkpoint")
    sys.path.insert(0, str(REPO))
    from zsseg_d2.data.registration import IMAGE_SUFFIXES
    from zsseg_d2.web.session import CHECKPOINT_CLASSES, Segmenter

    scenes = sorted(
        p for p in DEMO.glob("datasets/*/val/images/*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not (args.image or scenes):
        sys.exit(f"no scenes under {DEMO}/datasets: run `make demo` first or pass --image")
    image = args.image or str(scenes[0])
    if args.vocab is None:
        classes = Segmenter().class_list(CHECKPOINT_CLASSES, args.checkpoint)
        args.vocab = ", ".join([*classes, "person"])
    runs = [one_run(args, image) for _ in range(args.runs)]
    settings = {
        "runs": args.runs,
        "checkpoint": args.checkpoint,
        "image": image,
        "vocab": args.vocab,
    }
    for name, values in zip(("startup", "startup_cpu", "first_result"), zip(*runs)):
        summary = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        print(json.dumps({"name": f"web_demo_{name}", **{k: round(v, 2) for k, v in summary.items()},
                          "unit": "s", "settings": settings}))  # fmt: skip


if __name__ == "__main__":
    main()
