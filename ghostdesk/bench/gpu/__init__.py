"""`ghostdesk bench gpu`: the NVIDIA (CUDA) paths, run and measured on a GPU.

Also `python -m ghostdesk.bench.gpu`. Every stage goes through the app's own code:

1. probe: the nvidia-smi probe (`gpu_probe.query_nvidia_smi`) against
   `torch.cuda.mem_get_info`, and whether the llama.cpp build can offload.
2. offload: the chat model (default: the bundled one) loaded by `LlamaEngine.load` with GPU
   layers "auto" (`detect_gpus` + `plan_offload`): the layers put on the GPU, the reason the
   user is shown, the VRAM the load took against the plan's estimate, and greedy decode
   tokens/s on the GPU against a CPU-only load of the same file (alternating runs).
3. train: a short KTO run of the training child (`python -m ghostdesk.core.training
   run.json`, started by `TrainingProcess`) on a Hugging Face folder in 4 bits (QLoRA:
   bitsandbytes NF4, gradient checkpointing): training tokens/s, peak VRAM (torch's
   allocator inside the child, and nvidia-smi sampled from outside), the adapter GGUF the
   job writes.
4. autofit: the large GGUF with Auto GPU layers under a VRAM budget smaller than it needs
   (the probe's device with less free memory): the layers the plan keeps on the GPU, the
   VRAM the load really took, decode tokens/s of the split model.
5. adapter: the trained adapter hot-swapped (`AdapterSlot`) into the large GGUF on the GPU:
   decode tokens/s with and without it, alternating in one process, and the base reply
   coming back byte for byte after `deactivate()`.

Without a model download, `--make-random-base` writes a Llama-2-7B-shaped model with random
weights (bf16 safetensors) and `--converter` turns it into the q8_0 GGUF the chat runs (with
llama.cpp's `convert_hf_to_gguf.py`); the figures are then about speed and memory, not about
what the model says. Heavy libraries are imported only when a stage needs them, and torch
never in this process (it is asked in child processes): with the CUDA build of llama.cpp
tested, a process holding torch crashed at its first model load. Without a CUDA device the
benchmark refuses to start.

`main(argv, prog=...)` is the command line; `run_gpu_bench(Options(...))` returns the
BenchReport (printed as a Markdown table, appended to a file with `--record`).

The modules: `command` (the command line), `run` (the stages in order), `options` (what a run
is asked and what it found), `cuda` (is there a CUDA device, asked of PyTorch in a child
process), `measure` (decode runs, VRAM readings, the planner's estimate), `stages` (probe,
offload, autofit, adapter), `train_stage`, `random_model` (a model without a download) and
`summary` (the results as a report).
"""

from ghostdesk.bench.gpu.command import main

__all__ = ["main"]
