"""``tia2v serve``: its request checks, and the real page driven in headless Chromium."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tia2v import TIA2VPipeline
from tia2v.errors import InputError
from tia2v.io import read_video
from tia2v.serve import EMPTY_REQUEST, Demo, Limits

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Debian chromium + chromium-driver (.ci/run installs)"
)


@pytest.fixture(scope="module")
def demo(motion_model, tmp_path_factory):
    pipe = TIA2VPipeline.from_pretrained(motion_model, "cpu")
    return Demo(pipe, tmp_path_factory.mktemp("serve"), Limits(upload_mb=0.1, audio_seconds=2))


def wav(path, seconds, rate=16000):
    soundfile.write(path, np.random.default_rng(0).standard_normal(int(seconds * rate)) * 0.1, rate)
    return str(path)


def test_a_request_writes_video_strip_and_settings(demo, tmp_path):
    video, strip, settings_file, settings = demo.generate(
        "a red circle", None, wav(tmp_path / "a.wav", 0.5), "dpm++", 2, 3.0, 1.5, 4.0, 7
    )
    assert read_video(video).frames.shape == (4, 16, 16, 3)
    assert read_video(video).audio is not None
    assert settings["seed"] == 7 and settings["text"] == "a red circle"
    assert settings["audio"] == "a.wav"  # the upload's name, not the server's path
    assert json.loads(Path(settings_file).read_text()) == settings
    assert strip.endswith(".png")


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        ("notes.txt", "the audio is a .txt: give one of .wav"),
        ("big.wav", "MB: the limit is 0.1 MB"),
        ("long.wav", "the audio lasts 3.0 s: the limit is 2 s"),
        ("fake.wav", "fake.wav"),
    ],
)
def test_bad_uploads_are_one_message(demo, tmp_path, upload, message):
    path = tmp_path / upload
    if upload == "big.wav":
        wav(path, 4)  # 128 kB of 16-bit samples
    elif upload == "long.wav":
        soundfile.write(path, np.zeros(3 * 8000), 8000, subtype="PCM_U8")  # small but 3 s
    else:
        path.write_text("not audio")
    with pytest.raises(InputError, match=re.escape(message)):
        demo.generate("x", None, str(path), "dpm++", 2, 3.0, 1.5, 4.0, 0)


def test_empty_and_out_of_range_requests(demo, tmp_path):
    with pytest.raises(InputError, match=re.escape(EMPTY_REQUEST)):
        demo.generate("  ", None, None, "dpm++", 2, 3.0, 1.5, 4.0, 0)
    with pytest.raises(InputError, match="steps must be between 1 and 100"):
        demo.generate("x", None, None, "dpm++", 500, 3.0, 1.5, 4.0, 0)
    with pytest.raises(InputError, match="long video follows the audio"):
        demo.generate("x", None, None, "dpm++", 2, 3.0, 1.5, 4.0, 0, False, True)
    with pytest.raises(InputError, match="no refiner"):
        demo.generate("x", None, None, "dpm++", 2, 3.0, 1.5, 4.0, 0, True)


# -- The real page in a real browser --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(motion_model, tmp_path_factory):
    """``tia2v serve`` in its own process, on a free local port; stopped with SIGTERM, after
    which its folder must be gone."""
    port, log = free_port(), tmp_path_factory.mktemp("log") / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tia2v", "--quiet", "serve", "--model", str(motion_model)]
            + ["--port", str(port), "--device", "cpu"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert process.poll() is None, log.read_text()
            time.sleep(1)
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    workdir = re.search(r"files under (\S+)\)", log.read_text()).group(1)
    assert not os.path.exists(workdir), "the app folder was left behind"


@pytest.fixture(scope="module")
def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(chrome, find, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(
        f"not seen in {seconds} s; page text: {chrome.find_element('tag name', 'body').text[:500]}"
    )


def open_page(chrome, url):
    chrome.get(url)
    wait_for(chrome, lambda: chrome.find_elements("css selector", "#generate"))


def messages(chrome) -> str:
    return " ".join(e.text for e in chrome.find_elements("css selector", ".toast-message-text"))


@browser
@pytest.mark.browser
def test_the_page_generates_a_video_with_its_audio(server, chrome, tmp_path):
    open_page(chrome, server)
    chrome.find_element("css selector", "#prompt textarea").send_keys("a red circle")
    image = tmp_path / "first.png"
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), (200, 30, 30), np.uint8)).save(image)
    chrome.find_element("css selector", "#image input[type=file]").send_keys(str(image))
    chrome.find_element("css selector", "#audio input[type=file]").send_keys(
        wav(tmp_path / "beats.wav", 0.5)
    )
    wait_for(chrome, lambda: chrome.find_elements("css selector", "#audio audio, #audio canvas"))
    chrome.find_element("css selector", "#generate").click()
    src = wait_for(
        chrome,
        lambda: [
            v.get_attribute("src")
            for v in chrome.find_elements("css selector", "#video video")
            if v.get_attribute("src")
        ],
    )[0]
    (tmp_path / "got.mp4").write_bytes(urllib.request.urlopen(src).read())
    video = read_video(tmp_path / "got.mp4")
    assert video.frames.shape == (4, 16, 16, 3)
    assert video.audio is not None and len(video.audio) > 0
    assert abs(video.frames[0].astype(int) - (200, 30, 30)).mean() < 40  # the first frame held
    shown = re.sub(r"\s*\n\s*", "", chrome.find_element("css selector", "#settings").text)
    assert '"text":"a red circle"' in shown and '"audio":"beats.wav"' in shown
    assert "Traceback" not in chrome.page_source


@browser
@pytest.mark.browser
def test_a_text_file_as_the_audio_is_explained(server, chrome, tmp_path):
    open_page(chrome, server)
    (tmp_path / "notes.txt").write_text("not audio")
    chrome.find_element("css selector", "#audio input[type=file]").send_keys(
        str(tmp_path / "notes.txt")
    )
    assert "Invalid file type: notes.txt" in wait_for(chrome, lambda: messages(chrome))
    open_page(chrome, server)
    (tmp_path / "notes.wav").write_text("not audio either")  # passes the browser's type check
    chrome.find_element("css selector", "#prompt textarea").send_keys("x")
    chrome.find_element("css selector", "#audio input[type=file]").send_keys(
        str(tmp_path / "notes.wav")
    )
    time.sleep(2)
    chrome.find_element("css selector", "#generate").click()
    text = wait_for(chrome, lambda: messages(chrome))
    assert "notes.wav" in text and "internal error" not in text
    assert "Traceback" not in chrome.page_source


@browser
@pytest.mark.browser
def test_an_empty_request_is_explained(server, chrome):
    open_page(chrome, server)
    chrome.find_element("css selector", "#generate").click()
    assert EMPTY_REQUEST in wait_for(chrome, lambda: messages(chrome))


def test_a_busy_port_or_a_missing_model_is_one_line(motion_model, tmp_path):
    def serve(*args):
        return subprocess.run(
            [sys.executable, "-m", "tia2v", "--quiet", "serve", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = serve("--model", str(motion_model), "--port", port)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"--port {port}: cannot listen there" in result.stderr
    missing = serve("--model", str(tmp_path / "nowhere"), "--port", port)
    assert missing.returncode == 2 and "no such model folder" in missing.stderr
