"""A parallel, bounded-memory batcher: image files -> preprocessed batch arrays.

Worker threads decode and preprocess images straight into the batch array. PIL releases the
GIL while it decodes and resizes, which is almost all of the work, so threads use every core
without the copies and inter-process traffic of a process pool (measured on 2 cores: threads
1.84x the sequential loader, a fork pool with shared memory 1.6-1.7x). At most ``prefetch`` batches
are in flight, so memory stays at about ``(prefetch + 1) * batch bytes`` whatever the number of
images.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from calibration.errors import CalibrationError
from calibration.preprocess import PreprocessSpec


class BatchSource(Protocol):
    """What calibrators read: a fixed batch size and an iterable of batch arrays."""

    batch_size: int

    def __iter__(self) -> Iterator[np.ndarray]: ...


@dataclass
class ImageBatcher:
    """Iterate ``paths`` as batches of shape ``preprocess.shape(batch_size)``.

    ``drop_last``: drop a final partial batch (calibrators with a fixed batch need full ones);
    otherwise the last batch is smaller. ``workers`` defaults to one thread more than the CPUs:
    the Python part of each image holds the GIL, and a spare thread keeps every core decoding.
    ``fast_decode`` lets JPEGs decode at reduced size (see calibration.preprocess).
    """

    paths: Sequence[Path]
    preprocess: PreprocessSpec
    batch_size: int = 8
    workers: int | None = None
    prefetch: int = 2
    fast_decode: bool = False
    drop_last: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise CalibrationError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.paths:
            raise CalibrationError("no calibration images to batch")
        if self.drop_last and len(self.paths) < self.batch_size:
            raise CalibrationError(
                f"{len(self.paths)} calibration images are fewer than one batch of {self.batch_size}; "
                "add images or lower the batch size"
            )

    def __len__(self) -> int:
        full, rest = divmod(len(self.paths), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    @property
    def num_images(self) -> int:
        return len(self.paths) - (len(self.paths) % self.batch_size if self.drop_last else 0)

    def _chunks(self) -> Iterator[Sequence[Path]]:
        for start in range(0, len(self.paths), self.batch_size):
            chunk = self.paths[start : start + self.batch_size]
            if len(chunk) < self.batch_size and self.drop_last:
                return
            yield chunk

    def __iter__(self) -> Iterator[np.ndarray]:
        spec, fast = self.preprocess, self.fast_decode
        workers = self.workers or (os.cpu_count() or 1) + 1
        pending: deque[tuple[np.ndarray, list[Future[None]]]] = deque()
        chunks = self._chunks()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="calib-decode") as pool:

            def submit_next() -> None:
                chunk = next(chunks, None)
                if chunk is not None:
                    batch = np.empty(spec.shape(len(chunk)), spec.dtype)
                    futures = [pool.submit(spec.load_tensor_into, p, batch[i], fast) for i, p in enumerate(chunk)]
                    pending.append((batch, futures))

            try:
                for _ in range(max(1, self.prefetch)):
                    submit_next()
                while pending:
                    batch, futures = pending.popleft()
                    for future in futures:
                        future.result()  # re-raises the worker's CalibrationError
                    submit_next()
                    yield batch
            finally:
                for _, futures in pending:
                    for future in futures:
                        future.cancel()
