"""Learning from one person's feedback: a LoRA trained in a child process, measured against
the adapter it would replace, converted to a llama.cpp adapter and hot-swapped into the chat.

Heavy libraries (torch, transformers, peft, trl) are imported only inside the functions that
need them, so importing this package (e.g. from the GUI) costs nothing.
"""
