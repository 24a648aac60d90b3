"""The contamination audit and gate, on the data path: gold rows against training rows by
exact hash, shared n-grams, MinHash and embeddings (`audit.py` over `ngram_overlap.py`,
`audit_words.py`, `prompt_embeddings.py`; inputs read by `audit_inputs.py`), the
evidence side by side (`overlap_report.py`), and the gate every export and training run
passes (`gate.py`).
"""
