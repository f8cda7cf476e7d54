"""The documentation points at things that exist: every config it names loads, every script it
names answers ``--help``, every repository path and relative link it gives is there, and the
README stays a short entry page.

Documents: README.md, docs/*.md and configs/*/README.md. No data is read: loading a config only
reads YAML files (and registers data sets by name)."""

from __future__ import annotations

import contextlib
import io
import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "configs").glob("*/README.md")]
)

# `configs/...yaml`, brace groups allowed (`camvid_{st,ast}.yaml`); a placeholder (<K>, *) ends
# the match before ".yaml", so it is not taken for a path.
CONFIG_RE = re.compile(r"(?<![\w/.-])configs/[\w./{},-]*?\.yaml\b")
SCRIPT_RE = re.compile(r"(?<![\w/.-])(?:tools|benchmarks|datasets)/[\w-]+\.py\b")
# Package and test paths written in backquotes (folders end with "/").
PACKAGE_PATH_RE = re.compile(r"`((?:zsseg_d2|tests)/[\w./-]*)`")
LINK_RE = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _expand_braces(path: str) -> list[str]:
    """``a_{x,y}.yaml`` -> ``a_x.yaml``, ``a_y.yaml`` (nested groups too)."""
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    head, tail = path[: match.start()], path[match.end() :]
    return [p for part in match.group(1).split(",") for p in _expand_braces(head + part + tail)]


def _mentions(pattern: re.Pattern, expand: bool = False) -> dict[str, list[str]]:
    """Each distinct match -> the documents naming it."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for match in pattern.findall(doc.read_text(encoding="utf-8")):
            for item in _expand_braces(match) if expand else [match]:
                found.setdefault(item, []).append(str(doc.relative_to(ROOT)))
    return found


CONFIGS = _mentions(CONFIG_RE, expand=True)
SCRIPTS = _mentions(SCRIPT_RE)
PACKAGE_PATHS = _mentions(PACKAGE_PATH_RE)


def test_documents_found():
    names = {str(doc.relative_to(ROOT)) for doc in DOCS}
    assert "README.md" in names
    assert {
        f"configs/{m}/README.md" for m in ("cel", "szn", "zs3net", "sign", "relation_net")
    } <= names
    assert len([n for n in names if n.startswith("docs/")]) >= 8
    assert CONFIGS and SCRIPTS


def test_readme_is_short_and_starts_with_the_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move details to docs/"
    assert any("make test" in line for line in lines[:30])
    assert any("make demo" in line for line in lines[:30])


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_config_loads(config):
    from zsseg_d2.engine import load_config

    path = ROOT / config
    assert path.is_file(), f"{config} (named in {CONFIGS[config]}) does not exist"
    load_config(str(path))


def _help(script: str) -> tuple[int, str]:
    """Exit code and output of ``script --help``, run in this process (``runpy``): the scripts'
    imports (torch, detectron2) are loaded once for all of them."""
    output = io.StringIO()
    argv = sys.argv
    sys.argv = [str(ROOT / script), "--help"]
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            runpy.run_path(str(ROOT / script), run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = argv
    return code, output.getvalue()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_answers_help(script, monkeypatch):
    assert (ROOT / script).is_file(), f"{script} (named in {SCRIPTS[script]}) does not exist"
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)
    code, output = _help(script)
    assert code == 0, f"{script} --help exited {code}:\n{output[-2000:]}"
    assert "usage" in output.lower()


@pytest.mark.parametrize("path", sorted(PACKAGE_PATHS))
def test_package_path_exists(path):
    if "<" in path or "*" in path:
        pytest.skip("placeholder")
    assert (ROOT / path).exists(), f"{path} (named in {PACKAGE_PATHS[path]}) does not exist"


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_relative_links_exist(doc):
    missing = []
    for target in LINK_RE.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # URL, mail address or an anchor in the same page
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            missing.append(target)
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"
