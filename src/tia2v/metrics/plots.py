"""PNG charts of an eval report, drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

WIDTH, BAR, MARGIN = 640, 22, 12


def bar_chart(title: str, values: dict[str, float], path: Path) -> Path:
    """Horizontal bars, one per label, scaled to the largest absolute value."""
    height = MARGIN * 3 + BAR * max(1, len(values)) + 14
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN), title, fill="black")
    top = MARGIN * 2 + 14
    largest = max((abs(v) for v in values.values()), default=1.0) or 1.0
    for i, (label, value) in enumerate(values.items()):
        y = top + i * BAR
        length = int((WIDTH - 260) * abs(value) / largest)
        draw.text((MARGIN, y + 4), label[:24], fill="black")
        draw.rectangle([200, y + 3, 200 + length, y + BAR - 3], fill=(60, 110, 200))
        draw.text((206 + length, y + 4), f"{value:.3f}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def plot_report(report: dict, folder: str | Path) -> list[Path]:
    """metrics.png (every numeric summary value) and av_align.png (per video)."""
    folder = Path(folder)
    numeric = {
        k: v for k, v in report["metrics"].items() if isinstance(v, float) and math.isfinite(v)
    }
    paths = [bar_chart("metrics", numeric, folder / "metrics.png")]
    per_video = {
        k: row["av_align"]
        for k, row in report["per_video"].items()
        if math.isfinite(row.get("av_align", math.nan))
    }
    if per_video:
        paths.append(bar_chart("AV-Align per video", per_video, folder / "av_align.png"))
    return paths
