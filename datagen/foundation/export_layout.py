"""Where each format lives inside an export folder (`runs/<run_id>/export/`).

Written by `datagen/exports/formats.py`; read by the trainer (`train/`), the ablations,
and the contamination audit, which reads the two TRL files: the other formats hold the
same rows again. Each format has its own folder, so `datasets.load_dataset(folder)` and
`trl sft --dataset_name folder` read exactly one table; the dataset card at the root
(`README.md`) names each folder as a config, so `load_dataset(export, "<folder>")` and the
Hub read them by name.
"""

from __future__ import annotations

SFT_FILE = "trl_sft/train.jsonl"  # TRL conversational language modeling: `messages`
DPO_FILE = "trl_dpo/train.jsonl"  # TRL conversational preference: `prompt`, `chosen`, `rejected`
SFT_PARQUET = "trl_sft_parquet/train.parquet"
DPO_PARQUET = "trl_dpo_parquet/train.parquet"
ALPACA_FILE = "alpaca/train.jsonl"  # `instruction`, `input`, `output`
SHAREGPT_FILE = "sharegpt/train.jsonl"  # `conversations` of `from` / `value`
TRAINING_FILES = (SFT_FILE, DPO_FILE)  # every row a trainer reads, once
CARD_FILE = "README.md"  # the Hub's dataset card (datagen/exports/dataset_card.py), at the folder's root
