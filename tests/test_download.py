"""``tia2v download`` against a local HTTP server that serves stand-in files the way the
official hosts do (Hugging Face: a redirect carrying the weight file's sha256)."""

import hashlib
import http.server
import os
import subprocess
import sys
import threading

import pytest
import torch

from tests.helpers import TINY_BEATS
from tia2v.assets import locate
from tia2v.config import resolve_config
from tia2v.encoders import build_audio_encoder
from tia2v.encoders.beats import BEATs

BEATS_BYTES = b"stand-in BEATs checkpoint " * 1000
CLIP_FILES = {
    "config.json": b'{"model_type": "clip"}',
    "tokenizer.json": b"{}",
    "model.safetensors": b"stand-in weights " * 5000,
}


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    published: dict[str, str] = {}  # path → the sha256 the redirect announces
    cut_short: set[str] = set()  # paths whose body stops half way

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path in self.published:  # Hugging Face style: 302 with X-Linked-Etag
            self.send_response(302)
            self.send_header("Location", f"/cdn{self.path}")
            self.send_header("X-Linked-Etag", f'"{self.published[self.path]}"')
            self.end_headers()
            return
        path = self.path.removeprefix("/cdn")
        if path not in self.files:
            self.send_error(404)
            return
        body = self.files[path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if path in self.cut_short else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.files = {"/beats/BEATs_iter3_plus_AS20K.pt": BEATS_BYTES}
    Handler.files |= {f"/clip/{name}": body for name, body in CLIP_FILES.items()}
    weights = CLIP_FILES["model.safetensors"]
    Handler.published = {"/clip/model.safetensors": hashlib.sha256(weights).hexdigest()}
    Handler.cut_short = set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def tia2v(*args, home=None):
    env = {**os.environ, "TIA2V_HOME": str(home)} if home else None
    return subprocess.run(
        [sys.executable, "-m", "tia2v", "--quiet", "download", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def test_a_file_and_a_folder_round_trip(server, tmp_path):
    result = tia2v("beats", "clip", "--mirror", server, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "BEATs_iter3_plus_AS20K.pt").read_bytes() == BEATS_BYTES
    folder = tmp_path / "clip-vit-large-patch14"
    assert {p.name for p in folder.iterdir()} == {*CLIP_FILES, "manifest.json"}
    assert all((folder / name).read_bytes() == body for name, body in CLIP_FILES.items())
    assert hashlib.sha256(BEATS_BYTES).hexdigest() in result.stdout
    assert f"--set encoders.audio_path={tmp_path / 'BEATs_iter3_plus_AS20K.pt'}" in result.stdout
    assert not list(tmp_path.glob("*.part"))
    again = tia2v("beats", "--mirror", server, home=tmp_path)
    assert again.returncode == 0 and "already there" in again.stdout


def test_a_wrong_published_checksum_keeps_nothing(server, tmp_path):
    Handler.published["/clip/model.safetensors"] = "0" * 64
    result = tia2v("clip", "--to", str(tmp_path), "--mirror", server)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "differs from the published" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_download_cut_short_keeps_nothing(server, tmp_path):
    Handler.cut_short = {"/beats/BEATs_iter3_plus_AS20K.pt"}
    result = tia2v("beats", "--to", str(tmp_path), "--mirror", server)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "BEATs_iter3_plus_AS20K.pt" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_is_one_clear_error(server, tmp_path):
    del Handler.files["/beats/BEATs_iter3_plus_AS20K.pt"]
    result = tia2v("beats", "--to", str(tmp_path), "--mirror", server)
    assert result.returncode == 2 and "not found (HTTP 404)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_paper_presets_find_downloaded_encoders_from_any_folder(tmp_path, monkeypatch):
    torch.manual_seed(0)
    (tmp_path / "home").mkdir()
    BEATs(TINY_BEATS).save(tmp_path / "home" / "BEATs_iter3_plus_AS20K.pt")
    monkeypatch.setenv("TIA2V_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # where saved_ckpts/ does not exist
    cfg = resolve_config("paper-urmp")
    assert cfg.encoders.audio_path == "saved_ckpts/BEATs_iter3_plus_AS20K.pt"
    assert locate(cfg.encoders.audio_path) == str(tmp_path / "home" / "BEATs_iter3_plus_AS20K.pt")
    encoder = build_audio_encoder(cfg)
    assert encoder.dim == TINY_BEATS.encoder_embed_dim
    (tmp_path / "saved_ckpts").mkdir()  # a file where the config says wins
    (tmp_path / "saved_ckpts" / "BEATs_iter3_plus_AS20K.pt").write_bytes(b"x")
    assert locate(cfg.encoders.audio_path) == "saved_ckpts/BEATs_iter3_plus_AS20K.pt"
    assert locate("openai/clip-vit-large-patch14") == "openai/clip-vit-large-patch14"
