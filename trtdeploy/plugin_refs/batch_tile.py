"""BatchTilePlugin_TRT (TAO YOLO UFF exports: the ``FirstDimTile`` nodes) on a CPU.

NVIDIA/TensorRT release/10.16 plugin/batchTilePlugin/batchTilePlugin.cpp: two inputs; input 0
only gives the batch size, input 1 must be [1, d1, d2, d3] (configurePlugin l.160-162); each
image's output is a copy of input 1 (enqueue l.109-115, ``cudaMemcpyAsync`` of its bytes per
image), so the output is [B, d1, d2, d3] and always float32 (getOutputDataType l.99).
"""

from __future__ import annotations

import numpy as np

from trtdeploy.plugin_refs import Implementation


def batch_tile(batch_source: np.ndarray, tile: np.ndarray) -> tuple[np.ndarray]:
    tile = np.asarray(tile, dtype=np.float32)
    if tile.ndim != 4 or tile.shape[0] != 1:
        raise ValueError(f"BatchTilePlugin_TRT input 1 must be [1, d1, d2, d3], got {tile.shape}")
    batch = np.asarray(batch_source).shape[0]
    return (np.repeat(tile, batch, axis=0),)


IMPLEMENTATIONS = [
    Implementation(
        "BatchTilePlugin_TRT",
        "TrtDeployBatchTile",
        ("float32", "float32"),
        ("float32",),
        batch_tile,
        source="NVIDIA/TensorRT release/10.16 plugin/batchTilePlugin/batchTilePlugin.cpp l.60-168",
    )
]
