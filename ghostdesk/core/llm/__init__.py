"""The language model: GGUF inspection, chat formats, GPU placement, and the llama.cpp engine."""
