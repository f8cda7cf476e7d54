#!/usr/bin/env python3
"""A web page for open-vocabulary segmentation: your picture, your class names, in the browser.

  make web                                      # installs the web extra, then this with defaults
  python tools/web_demo.py [--checkpoint PTH] [--config-file CFG] [--port N] [KEY VALUE ...]

Serves on 127.0.0.1 only (to reach it from elsewhere, forward the port, e.g. `ssh -L`). The
default checkpoint is the one `make demo` trains (output/demo/stage3/model_final.pth); a
checkpoint's config is the config.yaml its training run wrote beside it (else --config-file), with
the text settings (semantic source, CLIP, prompts) of the checkpoint's text record, so the demo's
small CLIP is used offline. KEY VALUE pairs override the config for every checkpoint; the page
has a box for more. Needs the web extra: pip install -e .[web] (docs/web_demo.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

START = time.monotonic()
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "output" / "demo"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint",
        default=str(DEMO / "stage3" / "model_final.pth"),
        help="the checkpoint selected when the page opens (default: make demo's)",
    )
    parser.add_argument(
        "--config-file",
        default=None,
        help="config of checkpoints without a config.yaml beside them",
    )
    parser.add_argument(
        "--examples",
        nargs="*",
        default=None,
        help="demo scenes offered (image files, folders, globs; default: make demo's validation scenes)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=25.0,
        help="larger uploads are refused: inference needs about 0.15 kB per pixel (docs/web_demo.md)",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ..."
    )
    return parser.parse_args(argv)


def find_checkpoints(selected: str) -> list[str]:
    """``selected`` first, then every model_final.pth under output/ that has a config.yaml beside it."""
    found = sorted(
        str(p)
        for p in (REPO / "output").glob("**/model_final.pth")
        if (p.parent / "config.yaml").is_file()
    )
    return list(dict.fromkeys([selected, *found]))


def find_examples(patterns: list[str] | None, count: int = 8) -> list[Path]:
    """The images of ``patterns``; by default the first validation scenes `make demo` drew."""
    sys.path.insert(0, str(REPO / "tools"))
    from demo import expand_inputs  # tools/demo.py

    if patterns is None:
        folders = sorted(DEMO.glob("datasets/*/val/images"))
        return expand_inputs([str(folders[0])])[:count] if folders else []
    return expand_inputs(patterns)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.max_megapixels <= 0:
        print(f"error: --max-megapixels must be > 0, got {args.max_megapixels}", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry, no version check
    try:
        from zsseg_d2.web.app import build_app, launch
    except ImportError as error:
        print(
            f"error: {error}. Install the web extra: pip install -e .[web] (or make web)",
            file=sys.stderr,
        )
        return 2
    from zsseg_d2.web.session import CHECKPOINT_CLASSES, Segmenter, UserError

    try:
        examples = find_examples(args.examples)
        segmenter = Segmenter(args.config_file, args.opts, int(args.max_megapixels * 1e6))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    checkpoints = find_checkpoints(args.checkpoint)
    try:  # load the selected checkpoint now, so that the first request is fast
        vocabulary = segmenter.class_list(CHECKPOINT_CLASSES, args.checkpoint)
        segmenter.predictor(args.checkpoint, vocabulary)
    except UserError as error:  # the page opens anyway and shows the error on the first request
        vocabulary = []
        print(f"warning: {error}", file=sys.stderr)
    app = build_app(segmenter, checkpoints, vocabulary, examples)
    port = args.port or free_port()
    try:
        url = launch(app, port, {p.parent for p in examples})
    except OSError as error:
        print(
            f"error: cannot serve on 127.0.0.1:{port} ({error}); pass another --port, or 0",
            file=sys.stderr,
        )
        return 2
    print(
        f"web demo running at {url} (started in {time.monotonic() - START:.1f} s, "
        f"{time.process_time():.1f} s of CPU); Ctrl+C stops it",
        flush=True,
    )
    try:
        app.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
