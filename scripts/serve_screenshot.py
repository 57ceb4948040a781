"""The README's screenshot of the web demo, taken from the real page in headless Chromium.

    .venv/bin/python scripts/serve_screenshot.py [--model checkpoints/demo] [-o docs/serve.png]

Starts ``tia2v serve``, fills in the example row (prompt, first frame, beat track), clicks
Generate, waits for the video and saves a screenshot. Needs Debian's chromium and
chromium-driver.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1300",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="checkpoints/demo")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/serve.png"))
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tia2v", "--quiet", "serve", "--model", args.model]
        + ["--port", str(port), "--device", "cpu"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        driver.get(url)
        time.sleep(3)
        driver.find_element("css selector", "#prompt textarea").send_keys(
            Path("examples/prompt.txt").read_text().strip()
        )
        for box, file in (("#image", "examples/first.png"), ("#audio", "examples/beats.wav")):
            driver.find_element("css selector", f"{box} input[type=file]").send_keys(
                str(Path(file).resolve())
            )
        time.sleep(3)
        driver.find_element("css selector", "#generate").click()
        for _ in range(300):
            videos = driver.find_elements("css selector", "#video video")
            if videos and videos[0].get_attribute("src"):
                break
            time.sleep(1)
        time.sleep(2)
        driver.save_screenshot(str(args.output))
        print(f"wrote {args.output}")
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
