"""sentence-transformers runtime: batched, L2-normalised sentence embeddings."""

from __future__ import annotations

import numpy as np
import torch
from localoip.runtimes.base import Embeddings, Runtime
from localoip.runtimes.options import SentenceTransformersOptions
from sentence_transformers import SentenceTransformer


class SentenceTransformersRuntime(Runtime):
    options: SentenceTransformersOptions

    def __init__(self, path: str, options: SentenceTransformersOptions) -> None:
        super().__init__(path, options)
        self._model: SentenceTransformer | None = None

    def load(self) -> None:
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        self._model = SentenceTransformer(self.path, device=self.options.device)

    def unload(self) -> None:
        self._model = None

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            raise RuntimeError("model is not loaded")
        return self._model

    def count_tokens(self, texts: list[str]) -> tuple[int, ...]:
        """Tokens the model sees per text, special tokens included, after its truncation."""
        encoded = self.model.tokenizer(
            texts, truncation=True, max_length=self.model.max_seq_length
        )["input_ids"]
        return tuple(len(ids) for ids in encoded)

    def embed(self, texts: list[str]) -> Embeddings:
        vectors = self.model.encode(
            texts,
            batch_size=self.options.batch_size,
            normalize_embeddings=self.options.normalize,
            convert_to_numpy=True,
        )
        return Embeddings(
            vectors=np.asarray(vectors, dtype=np.float32), tokens=self.count_tokens(texts)
        )
