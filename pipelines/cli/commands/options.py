"""The options of `geofm predict`, `geofm import` and `geofm compare` (argparse only: the parser is built for
every command, so this module imports nothing heavy)."""

from __future__ import annotations

import argparse


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shape", nargs="+", type=int, metavar="SIZE",
                        help="shape of a raw .dat: SAMPLES TRACES, or INLINES CROSSLINES SAMPLES")
    parser.add_argument("--direction", choices=("inline", "crossline", "both"),
                        help="slices predicted through a volume (both: probabilities averaged)")
    parser.add_argument("--line-2d", action="store_true",
                        help="read a SEG-Y's traces in file order as one 2-D line, whatever the headers say")
    parser.add_argument("--inline-byte", type=int, metavar="BYTE",
                        help="SEG-Y trace header byte of the inline number (default: params.yaml's, 189)")
    parser.add_argument("--crossline-byte", type=int, metavar="BYTE",
                        help="SEG-Y trace header byte of the crossline number (default: params.yaml's, 193)")
    parser.add_argument("--endian", choices=("auto", "big", "little"),
                        help="SEG-Y byte order (default: auto, told from the binary header)")
    parser.add_argument("--duplicates", choices=("refuse", "first", "last"),
                        help="an inline/crossline position held by several traces: refused (default), or its "
                             "first or last trace kept")
    parser.add_argument("--percentiles", nargs=2, type=float, metavar=("LOW", "HIGH"),
                        help="amplitude clip percentiles over the whole survey (default: params.yaml's)")
    parser.add_argument("--no-amplitude-mapping", action="store_true",
                        help="the survey is already in the model's training range ([0, 255])")
    parser.add_argument("--probabilities", action="store_true", help="also write per-class probabilities")
    parser.add_argument("--figure", help="also write one line (section | prediction overlay) to this PNG")
    parser.add_argument("--figure-inline", type=int, metavar="NUMBER",
                        help="the number of the figure's line along the predicted direction (an inline, or a "
                             "crossline with --direction crossline; default: the middle one)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that exist already (never the input survey)")


def add_import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lora", help="the authors' LoRA factors file (loralib.lora_state_dict), for "
                                       "-lora models")
    parser.add_argument("--lora-in-weights", action="store_true",
                        help="the checkpoint's weights already hold the LoRA update (saved in eval mode)")


def _tolerance(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"the tolerance must be a number >= 0; got {text}")
    return value


def add_compare_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", help="the reference file, relative to the root (default: "
                                            "reference/<profile>-metrics.json)")
    parser.add_argument("--tolerance", type=_tolerance,
                        help="absolute tolerance on every score (default: exact for a strict-mode CPU "
                             "reference, else max(0.02, 3 x the seeds' std of the score))")
    parser.add_argument("--rerun", action="store_true", help="run `dvc repro` first")
    parser.add_argument("--write-reference", action="store_true",
                        help="record the runs' scores as the reference instead of comparing")
    parser.add_argument("--note", help="with --write-reference: where and how the reference was produced")
