"""How long and how much memory `geofm train` takes to answer for a training that already finished:
a tiny project (tests/tiny_benchmark.py, 1 task x 1 model) is prepared and trained once under a temporary
folder, then `geofm train` runs again under `/usr/bin/time -v`, and the figures are printed.

    .venv/bin/python scripts/measure_reused_train.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tiny_benchmark import write_tiny_params  # noqa: E402

GEOFM = str(Path(sys.executable).with_name("geofm"))
TRAIN = ["train", "--task", "salt", "--model", "unet"]


def _timed(root: Path, argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and standard output of `geofm argv` in `root`."""
    done = subprocess.run(["/usr/bin/time", "-v", GEOFM, *argv], cwd=root, capture_output=True, text=True,
                          check=True)
    elapsed = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+\.\d+)", done.stderr)
    minutes, seconds = elapsed.groups()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return int(minutes or 0) * 60 + float(seconds), rss_kb / 1024, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="reused answers to time (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="geofm-reuse-") as folder:
        root = Path(folder)
        write_tiny_params(root, ["salt"], ["unet"])
        for argv in (["raw"], ["prepare", "--task", "salt"]):
            _timed(root, argv)
        wall, rss, _ = _timed(root, TRAIN)
        print(f"first training:  {wall:6.2f} s, peak RSS {rss:6.0f} MB")
        for _ in range(args.repeat):
            wall, rss, out = _timed(root, TRAIN)
            print(f"reused training: {wall:6.2f} s, peak RSS {rss:6.0f} MB")
        print(out)
        wall, rss, _ = _timed(root, ["--help"])
        print(f"geofm --help:    {wall:6.2f} s, peak RSS {rss:6.0f} MB")


if __name__ == "__main__":
    main()
