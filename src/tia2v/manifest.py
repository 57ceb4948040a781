"""Manifests that let a folder of weights verify itself: each file's size and sha256.

A checkpoint or model folder gets ``manifest.json`` written last, after every file it lists,
so a folder whose manifest verifies is complete and unaltered; a truncated or bit-flipped
file is found before anything loads it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path, names: list[str], **extra) -> None:
    """Writes ``folder/manifest.json`` listing ``names`` (files in ``folder``), plus ``extra``."""
    files = {
        name: {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
        for name in sorted(names)
    }
    (folder / MANIFEST).write_text(json.dumps({**extra, "files": files}, indent=1))


def manifest_problem(folder: Path) -> str | None:
    """Why ``folder`` does not match its manifest (a missing, truncated or altered file, an
    unreadable manifest), or None when it does. A folder without a manifest is not checked."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{path}: unreadable manifest"
    for name, expected in files.items():
        file = folder / name
        if not file.is_file():
            return f"{file}: missing"
        if file.stat().st_size != expected["size"]:
            return f"{file}: {file.stat().st_size} bytes, the manifest says {expected['size']}"
        if file_sha256(file) != expected["sha256"]:
            return f"{file}: altered (its sha256 differs from the manifest's)"
    return None
