"""Filters that keep or reject rows with a stated reason: prompt length (`prompt_length.py`),
answers against the task's verifier (`answer_filters.py`) and text quality
(`text_filters.py`, `gopher_repetition.py`).
"""
