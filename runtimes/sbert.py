"""sentence-transformers runtime: batched sentence embeddings, or a CrossEncoder's rerank scores."""

from __future__ import annotations

import gc

import numpy as np
import torch
from localoip.runtimes.capabilities import (
    Embeddings,
    Runtime,
    Scores,
    in_vocabulary,
)
from localoip.runtimes.devices import torch_device
from localoip.runtimes.facts import ModelFacts, disk_size
from localoip.runtimes.options import SentenceTransformersOptions
from sentence_transformers import CrossEncoder, SentenceTransformer


class SentenceTransformersRuntime(Runtime):
    options: SentenceTransformersOptions

    def __init__(self, path: str, options: SentenceTransformersOptions) -> None:
        super().__init__(path, options)
        self._model: SentenceTransformer | CrossEncoder | None = None

    def load(self) -> None:
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        device = torch_device(self.options.device)
        if self.options.kind == "cross-encoder":
            model = CrossEncoder(self.path, device=device)
            if model.num_labels != 1:
                raise ValueError(
                    f"{self.path} is a cross-encoder with {model.num_labels} labels; "
                    "a reranker gives one score per pair"
                )
            self._model = model
        else:
            self._model = SentenceTransformer(self.path, device=device)

    def unload(self) -> None:
        """Drop the model, and collect what cycles its torch modules held, so its tensors are
        freed now rather than at the next full collection."""
        self._model = None
        gc.collect()

    def facts(self) -> ModelFacts:
        """The sequence length it truncates to, the transformer's position limit, the weights'
        dtype and the bytes of its folder."""
        model = self.model
        trained = next(
            (
                n
                for module in model.modules()
                if (n := getattr(getattr(module, "config", None), "max_position_embeddings", 0))
            ),
            None,
        )
        return ModelFacts(
            context_length=getattr(model, "max_seq_length", None) or model.max_length,
            trained_context_length=trained,
            quantization=str(next(model.parameters()).dtype).removeprefix("torch."),
            file_size=disk_size(self.path),
        )

    @property
    def model(self) -> SentenceTransformer | CrossEncoder:
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

    def rerank(self, query: str, documents: list[str]) -> Scores:
        """The cross-encoder's score of each (query, document) pair, after its activation."""
        pairs = [(query, document) for document in documents]
        scores = self.model.predict(
            pairs, batch_size=self.options.batch_size, convert_to_numpy=True
        )
        encoded = self.model.tokenizer(
            [query] * len(documents),
            documents,
            truncation=True,
            max_length=self.model.max_seq_length,
        )["input_ids"]
        return Scores(
            values=np.asarray(scores, dtype=np.float32).reshape(-1),
            tokens=sum(len(ids) for ids in encoded),
        )

    # -- tokenizer --------------------------------------------------------------------------

    def max_model_len(self) -> int:
        return self.model.max_seq_length

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        return list(self.model.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def detokenize(self, ids: list[int]) -> str:
        tokenizer = self.model.tokenizer
        return tokenizer.decode(in_vocabulary(ids, len(tokenizer), "tokens"))

    def token_strings(self, ids: list[int]) -> list[str]:
        tokenizer = self.model.tokenizer
        return tokenizer.convert_ids_to_tokens(in_vocabulary(ids, len(tokenizer), "tokens"))
