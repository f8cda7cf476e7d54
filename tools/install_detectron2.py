#!/usr/bin/env python3
"""Install detectron2 v0.6 (pure Python, no C++ extension) into the running interpreter.

This is the project's single compatibility shim for detectron2 on a machine without CUDA build
tools. detectron2 is not on PyPI under its own name; ``pb1-detectron2==0.6`` is a source package
whose Python files are identical to detectron2 v0.6 but which lacks the C++ sources. We fetch
that sdist with ``pip download`` (so the user's pip index, mirror, proxy and certificate settings
apply), check its sha256, patch a copy of it, and ``pip install`` the copy. pip >= 26 refuses to
download it from PyPI because its metadata declares a direct-URL dependency (the ``all`` extra's
panopticapi); then the file is looked up in the package index pip is configured with (PEP 691
JSON, ``index-url``) and fetched through pip's ``proxy`` / ``cert`` settings. Patches:

1. ``setup.py``: ``ext_modules=[]`` (the C++ sources are missing; semantic segmentation needs none
   of them -- only rotated boxes, deformable convolution and the fast COCO box evaluator do).
2. ``from detectron2 import _C`` becomes an optional import, so ``detectron2.layers`` imports.
3. the scalar aliases numpy removed in 1.24 (``bool``, ``int``, ``float``, ``str`` and ``object``
   under the ``np`` namespace) become the builtins they always aliased.
4. Pillow's removed ``Image.LINEAR`` becomes ``Image.BILINEAR`` (the same filter).

``pkg_resources`` (used by ``detectron2.model_zoo``) is kept working by pinning setuptools < 81 in
requirements.txt; ``torch.load``'s ``weights_only=True`` default needs no patch: the checkpoints
this project writes hold only tensors and plain containers.

GPU users should instead build the official detectron2 from source (see docs/install.md); the project code
runs unchanged on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

PACKAGE, VERSION = "pb1-detectron2", "0.6"
SDIST_NAME = f"{PACKAGE}-{VERSION}.tar.gz"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
DEFAULT_INDEX = "https://pypi.org/simple"

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


def pip_setting(name: str) -> str:
    """A pip option as pip resolves it: $PIP_<NAME>, else ``pip config`` (global / download
    sections); "" when unset."""
    env = os.environ.get("PIP_" + name.upper().replace("-", "_"))
    if env:
        return env
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    values = dict(re.findall(r"^(\S+?)='(.*)'$", listed, flags=re.M))
    return values.get(f"download.{name}") or values.get(f"global.{name}") or ""


def pip_download(dest: Path) -> Path | None:
    """``pip download`` of the sdist into ``dest``; None when pip cannot fetch it."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--no-build-isolation", "-d", str(dest), f"{PACKAGE}=={VERSION}"]  # fmt: skip
    print("running", " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        return None
    found = sorted(dest.glob(f"{PACKAGE}*{VERSION}.tar.gz"))
    return found[0] if found else None


def index_download(dest: Path) -> Path:
    """The sdist from the index pip is configured with (PEP 691 JSON), through pip's proxy and cert."""
    index = pip_setting("index-url") or DEFAULT_INDEX
    proxy = pip_setting("proxy")
    handlers = [urllib.request.ProxyHandler({"http": proxy, "https": proxy})] if proxy else []
    cert = pip_setting("cert")
    handlers.append(
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cert or None))
    )
    opener = urllib.request.build_opener(*handlers)
    page = f"{index.rstrip('/')}/{PACKAGE}/"
    request = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with opener.open(request, timeout=120) as response:
        files = json.load(response)["files"]
    urls = [urllib.parse.urljoin(page, f["url"]) for f in files if f["filename"] == SDIST_NAME]
    if not urls:
        sys.exit(f"error: {page} lists no {SDIST_NAME}; pass --sdist path/to/{SDIST_NAME}")
    path = dest / SDIST_NAME
    print(f"downloading {urls[0]}", flush=True)
    with opener.open(urls[0], timeout=120) as response:
        path.write_bytes(response.read())
    return path


def download(dest: Path, sdist: str | None) -> Path:
    """The sdist (``--sdist``, else pip download, else the configured index), sha256-checked."""
    path = Path(sdist) if sdist else (pip_download(dest) or index_download(dest))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(
            f"error: {path} has sha256 {digest}, expected {SDIST_SHA256}; refusing to install it"
        )
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
    parser.add_argument("--sdist", help=f"use this local {SDIST_NAME} instead of downloading")
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
        root = tmp_path / SDIST_NAME[: -len(".tar.gz")]
        print(f"patched {patch_source(root)} files", flush=True)
        subprocess.check_call(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                str(root),
            ]
        )
    if not already_installed():
        sys.exit("error: detectron2 was installed but does not import; see the output above")
    print("detectron2 installed")


if __name__ == "__main__":
    main()
