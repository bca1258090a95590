"""A model for the GPU benchmark without a download: a Llama of a known shape with random
weights (bf16 safetensors), and its GGUF made by llama.cpp's convert_hf_to_gguf.py. The
figures measured on it are about speed and memory, not about what the model says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ghostdesk.bench.gpu.options import GpuBenchError

# Shapes for --make-random-base: (hidden, layers, heads, kv heads, intermediate).
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "7b": (4096, 32, 32, 32, 11008),  # Llama 2 7B
    "tiny": (64, 2, 4, 4, 172),  # for trying the pipeline out
}


def make_random_llama(dest: str | Path, tokenizer: str | Path, *, shape: str = "7b",
                      seed: int = 0, device: str = "cuda") -> Path:
    """A Llama model of the given shape with random weights, saved as bf16 safetensors with
    the tokenizer from `tokenizer` (a folder AutoTokenizer reads). Skipped when `dest`
    already holds a config.json."""
    dest = Path(dest)
    if (dest / "config.json").is_file():
        return dest
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv_heads, inter = SHAPES[shape]
    tok = AutoTokenizer.from_pretrained(str(tokenizer))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, max_position_embeddings=4096,
                      rms_norm_eps=1e-5, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(previous)
    partial = dest.with_name(dest.name + ".partial")
    model.save_pretrained(partial, max_shard_size="5GB")
    tok.save_pretrained(partial)
    del model
    os.replace(partial, dest)
    return dest


def convert_to_gguf(hf_dir: str | Path, out: str | Path, converter: str | Path, *,
                    outtype: str = "q8_0") -> Path:
    """llama.cpp's convert_hf_to_gguf.py, run with this interpreter."""
    out = Path(out)
    if out.is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    done = subprocess.run([sys.executable, str(converter), str(hf_dir), "--outtype", outtype,
                           "--outfile", str(tmp)], capture_output=True, text=True)
    if done.returncode != 0:
        raise GpuBenchError(f"convert_hf_to_gguf.py failed:\n{done.stderr[-3000:]}")
    os.replace(tmp, out)
    return out
