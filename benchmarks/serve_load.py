"""Many users at once against ``tia2v serve`` on localhost: every request completes or is
refused with the queue-full message, none is lost or mixed up, and the server's memory
returns to its level after the first request.

    .venv/bin/python benchmarks/serve_load.py [--model checkpoints/demo] [--requests 20]
        [--concurrency 2] [--max-queue 8] [--steps 10]

Starts the server in its own process, sends one request to warm it, then ``--requests``
requests at once from as many client threads (prompt, the example first frame and beat track,
seed k for request k). A response counts as right when its settings carry its own prompt and
seed and its video decodes with that many frames. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="checkpoints/demo")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    from tia2v.io import read_video

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tia2v", "--quiet", "serve", "--model", args.model]
        + ["--port", str(port), "--device", "cpu", "--concurrency", str(args.concurrency)]
        + ["--max-queue", str(args.max_queue)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        image, audio = handle_file("examples/first.png"), handle_file("examples/beats.wav")

        def request(k: int) -> dict:
            prompt = f"request {k}: a red circle moving left"
            client = Client(url, verbose=False)
            start = time.perf_counter()
            try:
                video, _, _, settings = client.predict(
                    prompt,
                    image,
                    audio,
                    "dpm++",
                    args.steps,
                    3.0,
                    2.5,
                    2.0,
                    k,
                    False,
                    False,
                    api_name="/run",
                )
            except Exception as exc:  # noqa: BLE001 - a refusal is an outcome we count
                return {"k": k, "outcome": "refused", "message": str(exc)[:200]}
            frames = len(read_video(video["video"] if isinstance(video, dict) else video).frames)
            right = settings["text"] == prompt and settings["seed"] == k
            right = right and frames == settings["num_frames"]
            return {
                "k": k,
                "outcome": "done" if right else "mixed up",
                "seconds": round(time.perf_counter() - start, 1),
            }

        warm = request(args.requests)  # a seed of its own
        after_first = rss_mib(server.pid)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.requests) as pool:
            results = list(pool.map(request, range(args.requests)))
        seconds = time.perf_counter() - start
        time.sleep(5)
        after_all = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    outcomes = [r["outcome"] for r in results]
    refusals = {r["message"] for r in results if r["outcome"] == "refused"}
    print(
        json.dumps(
            {
                "benchmark": "serve_load",
                "requests": args.requests,
                "concurrency": args.concurrency,
                "max_queue": args.max_queue,
                "steps": args.steps,
                "warm_request": warm["outcome"],
                "done": outcomes.count("done"),
                "refused": outcomes.count("refused"),
                "mixed_up": outcomes.count("mixed up"),
                "lost": args.requests - len(results),
                "refusal_messages": sorted(refusals),
                "wall_s": round(seconds, 1),
                "rss_after_first_mib": round(after_first),
                "rss_after_all_mib": round(after_all),
                "rss_ratio": round(after_all / after_first, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
