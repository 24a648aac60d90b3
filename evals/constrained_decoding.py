"""Schema-constrained decoding: the base model can only emit JSON that fits the schema.

Constrained decoding guarantees the format without any training, so it is the honest
competitor of a fine-tune on a format task: if a LoRA adapter is not more *right* than
the base model held to the schema, its weight delta bought nothing but the format.

xgrammar (mlc-ai; used by vLLM and SGLang) compiles the answer schema's JSON Schema
against the tokenizer once, then masks every token that would leave the grammar at each
step of `model.generate`. It runs on CPU. Its wheel declares triton (1 GB, CUDA kernels
crucible never calls), so the Makefile installs it with `--no-deps` and pyproject names
the one dependency it does import (apache-tvm-ffi).

`any_whitespace=False`: the grammar allows no free whitespace between tokens, so a
greedy model cannot spend its token budget on newlines inside the object. For the same
reason every free-text string gets a `maxLength` (`max_string_chars`, unless the schema
sets one): the grammar guarantees the form only if the object closes within the token
budget, and a greedy 135M model in a repetition loop ("A-482913, A-482913, ...") fills it
inside the summary. With 160 characters, 32 of the 130 demo gold rows still ran out of a
112-token budget (digits are a token each); 100 characters is the default. A summary cut
there is still a string, and the demo task scores a summary only by its 20-word rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

MAX_STRING_CHARS = 100


def bounded_strings(json_schema: dict, max_chars: int) -> dict:
    """A copy of `json_schema` in which every string without a length bound, enum or
    pattern has `maxLength: max_chars`."""
    def visit(node):
        if isinstance(node, dict):
            node = {key: visit(value) for key, value in node.items()}
            if node.get("type") == "string" and not {"maxLength", "enum", "pattern", "const"} & set(node):
                node["maxLength"] = max_chars
            return node
        if isinstance(node, list):
            return [visit(item) for item in node]
        return node

    return visit(json_schema)


def schema_logits_processor(model_dir: Path, schema: type[BaseModel],
                            max_string_chars: int = MAX_STRING_CHARS) -> Callable[[], list]:
    """A factory of fresh logits-processor lists for `generate(..., logits_processor=...)`:
    xgrammar's processor keeps per-sequence matcher state, so each batch needs a new one."""
    import xgrammar
    from transformers import AutoConfig, AutoTokenizer
    from xgrammar.contrib.hf import LogitsProcessor

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # The model's vocabulary can be larger than the tokenizer's (padded embedding rows);
    # the mask must cover every logit.
    vocab_size = AutoConfig.from_pretrained(model_dir).vocab_size
    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    grammar = xgrammar.GrammarCompiler(info).compile_json_schema(
        json.dumps(bounded_strings(schema.model_json_schema(), max_string_chars)), any_whitespace=False)

    def fresh() -> list:
        return [LogitsProcessor(grammar)]

    return fresh
