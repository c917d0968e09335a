"""A parallel, bounded-memory batcher: image files -> preprocessed batch arrays.

Worker processes (forked; threads where fork is unavailable or ``backend="thread"``) decode and
preprocess images straight into shared batch buffers: PIL's JPEG decoder holds the GIL, so
threads do not scale. At most ``prefetch`` batches are in flight, so memory stays at about
``(prefetch + 1) * batch bytes`` whatever the number of images.
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
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
    otherwise the last batch is smaller. ``workers`` defaults to the number of CPUs.
    ``fast_decode`` lets JPEGs decode at reduced size (see calibration.preprocess).
    """

    paths: Sequence[Path]
    preprocess: PreprocessSpec
    batch_size: int = 8
    workers: int | None = None
    prefetch: int = 2
    fast_decode: bool = False
    drop_last: bool = False
    backend: str = "auto"  # auto | process | thread

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise CalibrationError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.paths:
            raise CalibrationError("no calibration images to batch")
        if self.backend not in ("auto", "process", "thread"):
            raise CalibrationError(f"batcher backend {self.backend!r} must be auto, process or thread")
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
        workers = self.workers or os.cpu_count() or 1
        use_processes = self.backend == "process" or (
            self.backend == "auto" and workers > 1 and "fork" in mp.get_all_start_methods()
        )
        if use_processes:
            yield from self._iter_processes(workers)
        else:
            yield from self._iter_threads(workers)

    def _iter_threads(self, workers: int) -> Iterator[np.ndarray]:
        spec = self.preprocess
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="calib-decode") as pool:

            def submit(chunk: Sequence[Path], _slot: int) -> tuple[np.ndarray, list[Future[None]]]:
                batch = np.empty(spec.shape(len(chunk)), spec.dtype)
                futures = [
                    pool.submit(spec.load_tensor_into, p, batch[i], self.fast_decode) for i, p in enumerate(chunk)
                ]
                return batch, futures

            for batch, _ in self._schedule(submit):
                yield batch

    def _iter_processes(self, workers: int) -> Iterator[np.ndarray]:
        # Decoding holds the GIL in PIL, so worker processes do the work. They write into an
        # anonymous shared mapping inherited through fork (no named segments to leak): one
        # slot per batch in flight, copied out when complete.
        spec, slots = self.preprocess, max(1, self.prefetch)
        batch_shape = spec.shape(self.batch_size)
        nbytes = int(np.prod(batch_shape)) * np.dtype(spec.dtype).itemsize
        shared = mmap.mmap(-1, nbytes * slots)
        ring = np.frombuffer(shared, dtype=spec.dtype).reshape((slots, *batch_shape))
        key = f"{os.getpid()}-{id(self)}-{next(_JOB_IDS)}"
        _SHARED[key] = (ring, spec, self.fast_decode)
        step = max(1, -(-self.batch_size // (2 * workers)))  # a few images per task: less IPC
        try:
            context = mp.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:

                def submit(chunk: Sequence[Path], slot: int) -> tuple[np.ndarray, list[Future[None]]]:
                    futures = [
                        pool.submit(_fill_slot, key, slot, start, [str(p) for p in chunk[start : start + step]])
                        for start in range(0, len(chunk), step)
                    ]
                    return ring[slot, : len(chunk)], futures

                for view, _ in self._schedule(submit):
                    yield view.copy()
        finally:
            _SHARED.pop(key, None)  # the mapping is freed with the last array viewing it

    def _schedule(self, submit):  # type: ignore[no-untyped-def]
        """Keep ``prefetch`` batches in flight; yield each as soon as all its images are done."""
        slots = max(1, self.prefetch)
        pending: deque[tuple[np.ndarray, list[Future[None]]]] = deque()
        chunks = enumerate(self._chunks())

        def submit_next() -> None:
            item = next(chunks, None)
            if item is not None:
                pending.append(submit(item[1], item[0] % slots))

        try:
            for _ in range(slots):
                submit_next()
            while pending:
                batch, futures = pending[0]
                for future in futures:
                    future.result()  # re-raises the worker's CalibrationError
                pending.popleft()
                yield batch, futures
                submit_next()  # after the consumer is done with the slot
        finally:
            for _, futures in pending:
                for future in futures:
                    future.cancel()


_SHARED: dict[str, tuple[np.ndarray, PreprocessSpec, bool]] = {}
_JOB_IDS = itertools.count()


def _fill_slot(key: str, slot: int, start: int, paths: list[str]) -> None:
    """Worker process: preprocess ``paths`` into positions start.. of a shared batch slot."""
    ring, spec, fast = _SHARED[key]
    for offset, path in enumerate(paths):
        spec.load_tensor_into(Path(path), ring[slot, start + offset], fast)
