"""``tia2v download``: fetch the official pretrained files into the asset folder.

Each file streams into a ``.part`` name and is renamed only once it is whole and its sha256
matches the one the server publishes (Hugging Face's ``X-Linked-Etag`` of a weight file);
a failed or interrupted download leaves nothing behind. Files without a published checksum
get theirs printed and, for folders, recorded in the folder's ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tia2v.assets import ASSETS, HF_FILES, Asset
from tia2v.errors import InputError
from tia2v.manifest import write_manifest

SHA256 = re.compile(r'^"?([0-9a-f]{64})"?$')
CHUNK = 1 << 20


class _Recording(urllib.request.HTTPRedirectHandler):
    """Follows redirects, keeping the checksum header of the response that redirected
    (Hugging Face publishes it there, before sending the client to its file store)."""

    def __init__(self) -> None:
        self.published: str | None = None

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.published = self.published or _published_sha256(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _published_sha256(headers) -> str | None:
    match = SHA256.match(headers.get("X-Linked-Etag", "") or "")
    return match.group(1) if match else None


def fetch(url: str, path: Path, progress: bool = True) -> str:
    """Downloads ``url`` to ``path`` (via ``path.part``); returns its sha256. Raises
    FileNotFoundError for a 404 and InputError for anything else that goes wrong."""
    from tqdm import tqdm

    recording = _Recording()
    opener = urllib.request.build_opener(recording)
    part = path.with_name(f"{path.name}.part")
    digest = hashlib.sha256()
    try:
        with opener.open(url, timeout=60) as response, part.open("wb") as out:
            published = recording.published or _published_sha256(response.headers)
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=size, unit="B", unit_scale=True, desc=path.name, disable=not progress
            ) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if size is not None and part.stat().st_size != size:
            raise InputError(
                f"{url}: the download stopped at {part.stat().st_size} of {size} bytes"
            )
        if published and digest.hexdigest() != published:
            raise InputError(
                f"{url}: sha256 {digest.hexdigest()} differs from the published {published} "
                "(a corrupted or replaced file); nothing was kept"
            )
        part.replace(path)
        return digest.hexdigest()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FileNotFoundError(url) from exc
        raise InputError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{url}: cannot download ({reason})") from exc
    finally:
        part.unlink(missing_ok=True)


def download(
    name: str, to: Path, mirror: str | None = None, progress: bool = True
) -> tuple[Path, dict[str, str]]:
    """Fetches asset ``name`` into folder ``to``; returns (its path, file → sha256). An asset
    already there is kept. ``mirror``: a base URL serving ``<mirror>/<name>/<file>`` instead
    of the official addresses (a local copy, a proxy)."""
    asset = ASSETS[name]
    target = to / asset.target
    if target.exists():
        return target, {}
    to.mkdir(parents=True, exist_ok=True)

    def url(file: str) -> str:
        return f"{mirror.rstrip('/')}/{name}/{file}" if mirror else asset.urls[file]

    if not asset.is_folder:
        try:
            return target, {asset.target: fetch(url(asset.target), target, progress)}
        except FileNotFoundError as exc:
            raise InputError(f"{exc}: not found (HTTP 404)") from exc
    return target, _download_folder(asset, target, url, progress)


def _download_folder(asset: Asset, target: Path, url, progress: bool) -> dict[str, str]:
    """A Hugging Face folder: the files it has of HF_FILES (config.json required) and the
    first weight file that exists, written to ``target.part/`` and renamed when complete."""
    part = target.with_name(f"{target.name}.part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    sums: dict[str, str] = {}
    try:
        for file in HF_FILES:
            try:
                sums[file] = fetch(url(file), part / file, progress)
            except FileNotFoundError as exc:
                if file == "config.json":
                    raise InputError(f"{exc}: not found (HTTP 404)") from exc
        for file in asset.weights:
            try:
                sums[file] = fetch(url(file), part / file, progress)
                break
            except FileNotFoundError:
                continue
        else:
            raise InputError(f"{asset.what}: none of {', '.join(asset.weights)} was found")
        write_manifest(part, list(sums))
        part.replace(target)
        return sums
    finally:
        shutil.rmtree(part, ignore_errors=True)
