#!/usr/bin/env python3
"""Install detectron2 v0.6 (pure Python, no C++ extension) into the running interpreter.

This is the project's single compatibility shim for detectron2 on a machine without CUDA build
tools. detectron2 is not on PyPI under its own name; ``pb1-detectron2==0.6`` is a source package
whose Python files are identical to detectron2 v0.6 but which lacks the C++ sources. We download
that sdist (sha256-pinned), patch a copy of it, and ``pip install`` the copy:

1. ``setup.py``: ``ext_modules=[]`` (the C++ sources are missing; semantic segmentation needs none
   of them -- only rotated boxes, deformable convolution and the fast COCO box evaluator do).
2. ``from detectron2 import _C`` becomes an optional import, so ``detectron2.layers`` imports.
3. the scalar aliases numpy removed in 1.24 (``bool``, ``int``, ``float``, ``str`` and ``object``
   under the ``np`` namespace) become the builtins they always aliased.
4. Pillow's removed ``Image.LINEAR`` becomes ``Image.BILINEAR`` (the same filter).

``pkg_resources`` (used by ``detectron2.model_zoo``) is kept working by pinning setuptools < 81 in
requirements.txt; ``torch.load``'s ``weights_only=True`` default needs no patch: the checkpoints
this project writes hold only tensors and plain containers.

GPU users should instead build the official detectron2 from source (see README); the project code
runs unchanged on it.
"""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

SDIST_URL = (
    "https://files.pythonhosted.org/packages/60/26/"
    "48f5bbb7ee492696a21da23303daeecdfe3942c498a70d34108acf63b2bd/pb1-detectron2-0.6.tar.gz"
)
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"

NUMPY_ALIASES = {"bool": "bool", "int": "int", "float": "float", "str": "str", "object": "object"}
OPTIONAL_C_IMPORT = (
    "try:\n"
    "    from detectron2 import _C\n"
    "except ImportError:  # built without the C++ extension (see zsseg_d2 tools/install_detectron2.py)\n"
    "    _C = None\n"
)


def already_installed() -> bool:
    try:
        import detectron2  # noqa: F401
        import detectron2.layers  # noqa: F401
    except ImportError:
        return False
    return True


def download(dest: Path, sdist: str | None) -> Path:
    if sdist:
        path = Path(sdist)
    else:
        path = dest / "pb1-detectron2-0.6.tar.gz"
        print(f"downloading {SDIST_URL}", flush=True)
        with urllib.request.urlopen(SDIST_URL, timeout=120) as response:
            path.write_bytes(response.read())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"error: {path} has sha256 {digest}, expected {SDIST_SHA256}; refusing to install it")
    return path


def patch_source(root: Path) -> int:
    """Apply the patches listed in the module docstring; returns the number of files changed."""
    setup = root / "setup.py"
    text = setup.read_text()
    if "ext_modules=get_extensions()" not in text:
        sys.exit(f"error: {setup} does not look like detectron2 v0.6's setup.py")
    setup.write_text(text.replace("ext_modules=get_extensions()", "ext_modules=[]"))
    changed = 1
    alias = re.compile(r"\bnp\.(" + "|".join(NUMPY_ALIASES) + r")\b(?!_)")
    for path in sorted((root / "detectron2").rglob("*.py")):
        text = path.read_text()
        new = alias.sub(lambda m: NUMPY_ALIASES[m.group(1)], text)
        new = new.replace("Image.LINEAR", "Image.BILINEAR")
        new = re.sub(r"^from detectron2 import _C\n", OPTIONAL_C_IMPORT, new, flags=re.M)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", help="use this local pb1-detectron2-0.6.tar.gz instead of downloading")
    parser.add_argument("--force", action="store_true", help="reinstall even if detectron2 imports")
    args = parser.parse_args()
    if already_installed() and not args.force:
        print("detectron2 already importable; nothing to do (use --force to reinstall)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        archive = download(tmp_path, args.sdist)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp_path, filter="data")
        root = tmp_path / "pb1-detectron2-0.6"
        print(f"patched {patch_source(root)} files", flush=True)
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(root)]
        )
    if not already_installed():
        sys.exit("error: detectron2 was installed but does not import; see the output above")
    print("detectron2 installed")


if __name__ == "__main__":
    main()
