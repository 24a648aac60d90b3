"""What a run hands to trainers: one SFT row per prompt (`sft_examples.py`) and the files
in TRL, Alpaca and ShareGPT formats (`formats.py`).
"""
