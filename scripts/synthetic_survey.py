"""Write a synthetic 3-D SEG-Y survey of one task (inlines x crosslines x samples), each inline a section of
the task's synthetic generator, its amplitudes scaled to field-like int16 values in the thousands; the
labels go beside it as `<name>.labels.npy` (inline, crossline, sample), to score a prediction. With
`--labelled-inlines`, also `<name>.labels.sgy`: a label cube of the survey's geometry as an interpreter
would hand it over, class ids on those inlines (0-based) and 255 (unlabelled) everywhere else, to train a
declared task on (docs/own-survey.md).

    python scripts/synthetic_survey.py --task salt --inlines 6 --crosslines 336 --samples 224 \
        --output surveys/salt.sgy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import segyio

from training.atomic import write_atomic_with
from training.data.synthetic import generate_sample
from training.tasks import get_task

FIELD_SCALE = 40.0  # [0, 255] record amplitudes -> about +-5,000, like an int16 field survey
INT16_FORMAT = 3
UNLABELLED = 255
SURVEY_INDEX = 1_000_000


def synthetic_survey(task_key: str, inlines: int, crosslines: int, samples: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(amplitudes int16, labels uint8), both (inline, crossline, sample)."""
    task = get_task(task_key).with_shape((samples, crosslines))
    # Indices past any data set's, so the survey shares no section with a training or test split.
    sections = [generate_sample(task, "valid", SURVEY_INDEX + index, seed) for index in range(inlines)]
    amplitudes = np.stack([(inputs - 127.5) * FIELD_SCALE for inputs, _ in sections]).transpose(0, 2, 1)
    labels = np.stack([labels for _, labels in sections]).transpose(0, 2, 1).astype(np.uint8)
    return np.clip(np.round(amplitudes), -32768, 32767).astype(np.int16), labels


def interpreted_labels(labels: np.ndarray, inlines: list[int]) -> np.ndarray:
    """`labels` on `inlines` only, UNLABELLED elsewhere, as int16 (inline, crossline, sample)."""
    outside = sorted(set(inlines) - set(range(len(labels))))
    if outside:
        raise SystemExit(f"--labelled-inlines: {outside[0]} is not an inline index of a survey of "
                         f"{len(labels)} inlines (0..{len(labels) - 1})")
    interpreted = np.full(labels.shape, UNLABELLED, dtype=np.int16)
    interpreted[inlines] = labels[inlines]
    return interpreted


def write_segy(path: Path, cube: np.ndarray) -> None:
    """`cube` (inline, crossline, sample) as an int16 SEG-Y, written beside `path` and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.writing")
    segyio.tools.from_array(str(staging), np.ascontiguousarray(cube), format=INT16_FORMAT)
    staging.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--inlines", type=int, default=6)
    parser.add_argument("--crosslines", type=int, default=336)
    parser.add_argument("--samples", type=int, default=224)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--labelled-inlines", type=int, nargs="+", default=[], metavar="INDEX",
                        help="also write <name>.labels.sgy, labelled on these inlines (0-based) only")
    args = parser.parse_args()
    amplitudes, labels = synthetic_survey(args.task, args.inlines, args.crosslines, args.samples, args.seed)
    interpreted = interpreted_labels(labels, args.labelled_inlines) if args.labelled_inlines else None
    write_segy(args.output, amplitudes)
    if interpreted is not None:
        write_segy(args.output.with_suffix(".labels.sgy"), interpreted)
        print(f"{args.output.with_suffix('.labels.sgy')}: labels on inline indices "
              f"{' '.join(map(str, args.labelled_inlines))}, {UNLABELLED} elsewhere")
    write_atomic_with(args.output.with_suffix(".labels.npy"), lambda handle: np.save(handle, labels))
    print(f"{args.output}: {args.inlines} inlines x {args.crosslines} crosslines x {args.samples} samples, "
          f"int16 amplitudes {amplitudes.min()}..{amplitudes.max()}; labels in "
          f"{args.output.with_suffix('.labels.npy')}")


if __name__ == "__main__":
    main()
