"""TAO tensorfiles (``--cal_data_file``): HDF5 holding preprocessed calibration batches.

Layout: root attributes ``count`` (number of batches) and ``shape`` (shape of every batch,
NCHW); one group per batch, ``_tensorfile_array_key__<i>`` for i = 0..count-1, each holding the
dataset ``_tensorfile_array_key_`` (float32).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from calibration._io import atomic_target
from calibration.errors import CalibrationError

GROUP_PREFIX = "_tensorfile_array_key__"
DATASET = "_tensorfile_array_key_"


def write_tensorfile(path: str | Path, batches: Iterable[np.ndarray]) -> int:
    """Write the batches (all the same shape) atomically; returns the number written."""
    import h5py

    count, shape = 0, None
    with atomic_target(Path(path)) as tmp, h5py.File(tmp, "w") as f:
        for batch in batches:
            array = np.asarray(batch, dtype=np.float32)
            if shape is None:
                shape = array.shape
            elif array.shape != shape:
                raise CalibrationError(
                    f"tensorfile batches must all have shape {list(shape)}; batch {count} has "
                    f"{list(array.shape)} (use drop_last for a partial final batch)"
                )
            f.create_group(f"{GROUP_PREFIX}{count}").create_dataset(DATASET, data=array)
            count += 1
        if count == 0:
            raise CalibrationError("no batches to write to the tensorfile")
        f.attrs["count"] = count
        f.attrs["shape"] = np.asarray(shape, np.int64)
    return count


def tensorfile_info(path: str | Path) -> tuple[int, tuple[int, ...] | None]:
    """(count, shape) from the root attributes."""
    import h5py

    with _open(path, h5py) as f:
        shape = tuple(int(d) for d in f.attrs["shape"]) if "shape" in f.attrs else None
        return int(f.attrs["count"]), shape


def read_tensorfile(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the batches in order."""
    import h5py

    with _open(path, h5py) as f:
        count = int(f.attrs["count"])
        for i in range(count):
            group = f.get(f"{GROUP_PREFIX}{i}")
            if group is None or DATASET not in group:
                raise CalibrationError(
                    f"tensorfile {path} says count={count} but has no batch {i} ({GROUP_PREFIX}{i}/{DATASET})"
                )
            yield np.asarray(group[DATASET])


def _open(path: str | Path, h5py):  # type: ignore[no-untyped-def]
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"tensorfile {path} not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CalibrationError(f"{path} is not an HDF5 tensorfile: {exc}") from exc
    if "count" not in f.attrs:
        f.close()
        raise CalibrationError(f"{path} is HDF5 but not a TAO tensorfile (no 'count' attribute)")
    return f


class TensorfileBatches:
    """A tensorfile as a BatchSource: its stored batches, already preprocessed (TAO's format)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        count, shape = tensorfile_info(self.path)
        if shape is None:
            first = next(read_tensorfile(self.path))
            shape = tuple(first.shape)
        self.count = count
        self.shape = shape
        self.batch_size = int(shape[0])

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        return read_tensorfile(self.path)


def is_tensorfile(path: str | Path) -> bool:
    """An HDF5 file (by its signature), which is what a tensorfile is."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"
