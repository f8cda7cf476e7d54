"""Word vectors (word2vec, fastText, GloVe) of any class list, in the format of the shipped files
in ``zsseg_d2/data/embeddings/`` that ``MODEL.SEMANTIC.FILES`` reads.

Writes ``PREFIX.<kind>.npy`` (float32 [classes, dim], each row L2-normalised, rows in the class
list's order) and ``PREFIX.names.txt`` (the class names, one per line), both atomically, and only
when every class has a vector.

Inputs
  --vectors FILE   word2vec binary (GoogleNews-vectors-negative300.bin: a "count dim" line, then per
                   word the UTF-8 word, a space and dim little-endian float32), or text: fastText
                   .vec ("count dim" line, then "word v1 ... vd" lines) or GloVe .txt (no header).
                   Detected from the file (gzip-compressed too), or given with --format. The file
                   is read once, streaming, keeping only the words needed.
  --classes LIST   a text file, one class name per line, or the name of a list shipped in
                   zsseg_d2/data/class_names/ (e.g. pascal_context_59, voc_21): there the vector is
                   that of the prompt name ("potted plant") and names.txt holds the data set's name
                   ("pottedplant").

A class's vector: the whole name as one token if the file has it (the name as written, then its
words joined by "_", as word2vec's phrases "traffic_light"); otherwise the average of its words'
vectors, the name split on spaces, "-", "_" and "/". Each token is looked up as written, then in
lower case. Averaging is over the raw (not unit-normalised) word vectors; the average is then
L2-normalised.

How SPNet (subhc/SPNet) composed its multi-word names: its repository ships only the resulting
vectors (``data/datasets/*/word_vectors/*.pkl``), no code that computes them. Its files (the ones
in zsseg_d2/data/embeddings/) show it: in all three kinds, the rows of "wall-stone", "floor-stone",
"wall-wood", "floor-wood", "stone" and "wood" span exactly 4 dimensions, and "mirror-stuff",
"mirror", "desk-stuff", "desk" exactly 3, so a multi-word row is a linear combination of its
words' vectors; the weights found differ between words (e.g. desk 1.15 x mirror), as an average of
raw word vectors of different norms gives, not an average of unit vectors. This script does that.

Missing words are an error (exit 2, nothing written) listing every class none of whose words is in
the file and every word missing inside a multi-word name. ``--allow-missing --fill random`` instead
gives such a class the average of the words found or, if none is found, a random unit vector drawn
from a fixed seed (the same for a name on every run), and reports each class so filled.

Usage:
  python datasets/prepare_word_vectors.py --vectors GoogleNews-vectors-negative300.bin \\
      --classes pascal_context_60 --kind word2vec --output datasets/word_vectors/pascal_context_60
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

FORMATS = ("word2vec-bin", "text")
SEPARATORS = re.compile(r"[\s\-_/]+")
FILL_SEED = 0
CHUNK = 1 << 22  # bytes read at a time from a word2vec binary file


class PrepareError(Exception):
    """A problem with the inputs, reported as one message and exit code 2."""


@dataclass
class ClassVector:
    """How one class's vector was made: the tokens used, the words missing, the raw vector."""

    name: str
    tokens: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    vector: np.ndarray | None = None


# ---- class lists -----------------------------------------------------------------------------


def load_classes(spec: str) -> tuple[list[str], list[str]]:
    """``(names, texts)``: the names to write and the text whose words give each vector."""
    path = Path(spec)
    if path.is_file():
        from zsseg_d2.data.class_lists import read_names_file

        names = read_names_file(path)
        texts = names
    else:
        from zsseg_d2.data.class_lists import load_class_list

        try:
            class_list = load_class_list(spec)
        except FileNotFoundError as e:
            raise PrepareError(
                f"--classes {spec!r} is neither a file nor a shipped class list: {e}"
            ) from e
        names, texts = list(class_list.names), list(class_list.prompts)
    from zsseg_d2.modeling.semantic.names import validate_class_names

    try:
        return validate_class_names(names, f"--classes {spec}"), texts
    except ValueError as e:
        raise PrepareError(str(e)) from e


def split_words(text: str) -> list[str]:
    """The words of a class name: split on spaces, "-", "_" and "/"."""
    return [w for w in SEPARATORS.split(text.strip()) if w]


def phrase_tokens(text: str) -> list[str]:
    """The whole name as one token: as written (if it has no space), then its words joined by "_"."""
    words = split_words(text)
    candidates = [text.strip()] if not re.search(r"\s", text.strip()) else []
    return list(dict.fromkeys([*candidates, "_".join(words)]))


def wanted_tokens(texts: Sequence[str]) -> set[str]:
    """Every token a lookup may ask for, in its written and lower-case forms."""
    tokens = {t for text in texts for t in (*phrase_tokens(text), *split_words(text))}
    return tokens | {t.lower() for t in tokens}


# ---- reading vector files ----------------------------------------------------------------------


def open_vectors(path: Path) -> BinaryIO:
    """The file for reading bytes, decompressed on the fly if it is gzip."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def parse_header(line: bytes) -> tuple[int, int] | None:
    """``(count, dim)`` of a "count dim" header line, None for anything else."""
    fields = line.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[0]), int(fields[1])
    return None


def detect_format(path: Path) -> str:
    """ "word2vec-bin" when a "count dim" header is followed by non-text data, else "text"."""
    with open_vectors(path) as f:
        header = parse_header(f.readline(1 << 16))
        if header is None:
            return "text"
        line = f.readline(1 << 20)
    try:
        fields = line.decode("utf-8").split()
        [float(v) for v in fields[1:]]
    except (UnicodeDecodeError, ValueError):
        return "word2vec-bin"
    return "text" if len(fields) >= header[1] + 1 else "word2vec-bin"


def read_word2vec_bin(f: BinaryIO, wanted: set[bytes]) -> Iterator[tuple[bytes, np.ndarray]]:
    """``(word, vector)`` of the wanted words of a word2vec binary file, reading it in chunks."""
    header = parse_header(f.readline(1 << 16))
    if header is None:
        raise PrepareError("not a word2vec binary file: the first line is not 'count dim'")
    count, dim = header
    size = 4 * dim
    buf, pos = b"", 0
    for _ in range(count):
        space = buf.find(b" ", pos)
        while space < 0 or len(buf) < space + 1 + size:
            chunk = f.read(CHUNK)
            if not chunk:
                raise PrepareError(
                    f"the word2vec binary file ends early (its header says {count} words)"
                )
            buf, pos = buf[pos:] + chunk, 0
            space = buf.find(b" ")
        word = buf[pos:space].lstrip(b"\n")
        if word in wanted:
            yield (
                word,
                np.frombuffer(buf, dtype="<f4", count=dim, offset=space + 1).astype(np.float32),
            )
        pos = space + 1 + size


def read_text(f: BinaryIO, wanted: set[bytes]) -> Iterator[tuple[bytes, np.ndarray]]:
    """``(word, vector)`` of the wanted words of a fastText (.vec) or GloVe (.txt) text file."""
    dim = None
    for number, line in enumerate(f, start=1):
        if number == 1:
            header = parse_header(line)
            if header is not None:
                dim = header[1]
                continue
        if dim is None:
            dim = len(line.split()) - 1
        if line.partition(b" ")[0] in wanted:
            word, *values = line.rstrip(b"\r\n ").rsplit(b" ", dim)
            if word in wanted:
                yield word, text_vector(values, dim, number)


def text_vector(values: list[bytes], dim: int, number: int) -> np.ndarray:
    """The floats of one text line; a wrong count or a non-number names the line."""
    try:
        vector = np.array([float(v) for v in values], dtype=np.float32)
    except ValueError as e:
        raise PrepareError(f"line {number} of the vector file: {e}") from e
    if len(vector) != dim:
        raise PrepareError(
            f"line {number} of the vector file has {len(vector)} values, expected {dim}"
        )
    return vector


def read_vectors(path: Path, fmt: str | None, wanted: set[str]) -> dict[str, np.ndarray]:
    """The vectors of the wanted tokens found in the file (first occurrence wins)."""
    if not path.is_file():
        raise PrepareError(f"--vectors {path} does not exist")
    fmt = fmt or detect_format(path)
    reader = read_word2vec_bin if fmt == "word2vec-bin" else read_text
    keys = {w.encode("utf-8"): w for w in wanted}
    found: dict[str, np.ndarray] = {}
    with open_vectors(path) as f:
        for word, vector in reader(f, set(keys)):
            found.setdefault(keys[word], vector)
            if len(found) == len(keys):
                break
    return found


# ---- composing class vectors -------------------------------------------------------------------


def lookup(token: str, table: dict[str, np.ndarray]) -> str | None:
    """The key of ``token`` in the table: as written, else lower-cased, else None."""
    return next((t for t in (token, token.lower()) if t in table), None)


def class_vector(name: str, text: str, table: dict[str, np.ndarray]) -> ClassVector:
    """The phrase token's vector if present, else the average of the words found (raw vectors)."""
    for phrase in phrase_tokens(text):
        key = lookup(phrase, table)
        if key is not None:
            return ClassVector(name, [key], [], table[key])
    words = split_words(text)
    keys = [lookup(w, table) for w in words]
    used = [k for k in keys if k is not None]
    missing = [w for w, k in zip(words, keys) if k is None]
    vector = np.mean([table[k] for k in used], axis=0) if used else None
    return ClassVector(name, used, missing, vector)


def describe(result: ClassVector, text: str) -> str:
    """A report line for a class not given by its text as one token ("" otherwise)."""
    if result.missing or not result.tokens:
        return ""
    if len(result.tokens) > 1:
        return f"{result.name} <- mean of {result.tokens}"
    return f"{result.name} <- {result.tokens[0]!r}" if result.tokens[0] != text else ""


def missing_message(results: Sequence[ClassVector]) -> str:
    """One message listing every class with no word found and every word missing in a name."""
    none = [r.name for r in results if r.vector is None]
    partial = [f"{w!r} in {r.name!r}" for r in results if r.vector is not None for w in r.missing]
    parts = []
    if none:
        parts.append(f"classes with none of their words in the vector file ({len(none)}): {none}")
    if partial:
        parts.append(
            f"words missing inside multi-word names ({len(partial)}): {', '.join(partial)}"
        )
    return "; ".join(parts) + (
        ". Nothing was written. Rename the classes (e.g. a names file with other words), or pass "
        "--allow-missing --fill random to average the words found and give a class with none a "
        "random unit vector"
    )


def random_unit(name: str, dim: int) -> np.ndarray:
    """A unit vector drawn from a fixed seed and the name (the same on every run)."""
    rng = np.random.default_rng([FILL_SEED, zlib.crc32(name.encode("utf-8"))])
    vector = rng.standard_normal(dim)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def fill_missing(results: Sequence[ClassVector], dim: int) -> list[str]:
    """Give each class with no word found a random unit vector; one report line per filled class."""
    report = []
    for r in results:
        if r.vector is None:
            r.vector = random_unit(r.name, dim)
            report.append(f"{r.name}: no word found, random unit vector (seed {FILL_SEED})")
        elif r.missing:
            report.append(f"{r.name}: missing {r.missing}, average of {r.tokens}")
    return report


def normalised_rows(results: Sequence[ClassVector]) -> np.ndarray:
    """The class vectors stacked, each row L2-normalised; a zero vector is an error."""
    matrix = np.stack([r.vector for r in results]).astype(np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    zero = [r.name for r, n in zip(results, norms[:, 0]) if not n > 0]
    if zero:
        raise PrepareError(f"the vectors of {zero} are zero and cannot be normalised")
    return (matrix / norms).astype(np.float32)


# ---- writing -----------------------------------------------------------------------------------


def output_paths(prefix: str, kind: str) -> tuple[Path, Path]:
    """``(PREFIX.<kind>.npy, PREFIX.names.txt)``."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", kind):
        raise PrepareError(
            f"--kind {kind!r}: use letters, digits, '-' and '_' only (e.g. word2vec)"
        )
    return Path(f"{prefix}.{kind}.npy"), Path(f"{prefix}.names.txt")


def check_names_file(path: Path, names: Sequence[str]) -> None:
    """Refuse to replace a names file listing other classes (other kinds beside it would break)."""
    if path.is_file():
        from zsseg_d2.data.class_lists import read_names_file

        if read_names_file(path) != list(names):
            raise PrepareError(
                f"{path} already lists other class names; the .npy files beside it would no longer "
                f"match. Choose another --output prefix or delete {path}"
            )


def write_outputs(
    npy_path: Path, names_path: Path, matrix: np.ndarray, names: Sequence[str]
) -> None:
    """Write both files, each atomically (no half-written file is ever visible)."""
    from zsseg_d2.utils.file_io import atomic_write

    with atomic_write(npy_path, "wb") as f:
        np.save(f, matrix)
    with atomic_write(names_path, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in names))


# ---- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--vectors", type=Path, required=True, help="word2vec .bin, fastText .vec or GloVe .txt"
    )
    parser.add_argument("--format", choices=FORMATS, help="format of --vectors (default: detected)")
    parser.add_argument(
        "--classes", required=True, help="names file (one per line) or shipped list name"
    )
    parser.add_argument(
        "--output", required=True, help="output prefix: writes PREFIX.<kind>.npy, PREFIX.names.txt"
    )
    parser.add_argument(
        "--kind", required=True, help="name of the vectors in the file name, e.g. word2vec"
    )
    parser.add_argument(
        "--allow-missing", action="store_true", help="with --fill random: fill missing words"
    )
    parser.add_argument(
        "--fill", choices=["random"], help="how --allow-missing fills a class with no word"
    )
    args = parser.parse_args(argv)
    if args.fill and not args.allow_missing:
        parser.error("--fill random only takes effect with --allow-missing")
    return args


def run(args: argparse.Namespace) -> list[str]:
    """Build and write the files; returns the report lines."""
    npy_path, names_path = output_paths(args.output, args.kind)
    names, texts = load_classes(args.classes)
    table = read_vectors(args.vectors, args.format, wanted_tokens(texts))
    if not table:
        raise PrepareError(f"none of the {len(names)} class names has a word in {args.vectors}")
    results = [class_vector(n, t, table) for n, t in zip(names, texts)]
    report = [line for r, t in zip(results, texts) if (line := describe(r, t))]
    if any(r.vector is None or r.missing for r in results):
        if not (args.allow_missing and args.fill == "random"):
            raise PrepareError(missing_message(results))
        report += fill_missing(results, len(next(iter(table.values()))))
    matrix = normalised_rows(results)
    check_names_file(names_path, names)
    write_outputs(npy_path, names_path, matrix, names)
    return report + [f"wrote {npy_path} ({matrix.shape[0]} x {matrix.shape[1]}) and {names_path}"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except PrepareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
