"""Exact and near-duplicate removal: normalized hashes (`exact_dedup.py`), MinHash
signatures and LSH (`minhash_signatures.py`, `minhash_dedup.py`), and whole files
(`dedupe_files.py`, `crucible dedupe`).
"""
