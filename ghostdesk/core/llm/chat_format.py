"""Turns a conversation into the exact prompt text a model was trained to continue.

A model's own `tokenizer.chat_template` wins. It is Jinja code taken from the model file, so
it is rendered only through llama-cpp-python's sandboxed formatter (CVE-2024-34359). Models
without one (like the bundled Gemma 3 270M base model) get a built-in format chosen from the
architecture and vocabulary; each matches its family's reference template byte for byte, so
training data rendered here is what the model sees at chat time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ghostdesk.core.errors import ModelFileError
from ghostdesk.core.llm.types import ChatMessage, RenderedPrompt

EMBEDDED = "embedded template"
GEMMA, CHATML, LLAMA3, LLAMA2, MISTRAL = "gemma", "chatml", "llama-3", "llama-2", "mistral"
# End-of-turn tokens used as stop strings when they are in a model's vocabulary.
_TURN_ENDS = ("<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|end|>")
# Turn markers that end a reply when a model without chat training (the bundled Gemma 3
# base) opens the next turn itself instead of ending its own.
_TURN_MARKERS = {GEMMA: ("<start_of_turn>", "<end_of_turn>"),
                 CHATML: ("<|im_start|>", "<|im_end|>"),
                 LLAMA3: ("<|start_header_id|>", "<|eot_id|>")}


class TemplateSource(Protocol):
    """What rendering needs from a model; ModelInfo and ChatTemplateData both provide it."""

    architecture: str
    chat_template: str | None
    bos_text: str
    eos_text: str
    add_bos_token: bool
    vocab_markers: frozenset[str]


@dataclass(frozen=True)
class ChatTemplateData:
    """The template facts on their own, for callers (and tests) without a model file."""

    architecture: str = ""
    chat_template: str | None = None
    bos_text: str = ""
    eos_text: str = ""
    add_bos_token: bool = False
    vocab_markers: frozenset[str] = frozenset()


def choose_format(src: TemplateSource) -> str:
    """Name of the format `render_chat` will use for this model."""
    if src.chat_template:
        return EMBEDDED
    arch = (src.architecture or "").lower()
    markers = src.vocab_markers or frozenset()
    if arch.startswith("gemma") or "<start_of_turn>" in markers:
        return GEMMA
    if "<|start_header_id|>" in markers:
        return LLAMA3
    if "<|im_start|>" in markers:
        return CHATML
    if arch == "mistral":
        return MISTRAL
    if arch == "llama":
        return LLAMA2
    return CHATML  # qwen2/qwen3 and anything unknown


def render_chat(messages: Sequence[ChatMessage], src: TemplateSource) -> RenderedPrompt:
    """Render `messages` plus the opening of the assistant's reply. The text includes the
    BOS token's text where the format wants one: tokenize it with add_bos=False and
    special tokens parsed."""
    name = choose_format(src)
    if name == EMBEDDED:
        return _render_embedded(messages, src)
    text, stop = _BUILTIN[name](list(messages), src)
    return RenderedPrompt(text=text, stop=stop, format_name=name,
                          stop_tokens=_TURN_MARKERS.get(name, ()))


def _split_system(messages: list[ChatMessage]) -> tuple[str, list[ChatMessage]]:
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    return system, [m for m in messages if m.role != "system"]


def _gemma(messages: list[ChatMessage], src: TemplateSource) -> tuple[str, tuple[str, ...]]:
    # Google's Gemma template: the system text plus a blank line opens the first user turn,
    # "assistant" is called "model", and message contents are trimmed. Google's template
    # raises on non-alternating roles; here such turns are rendered as they come.
    system, rest = _split_system(messages)
    out = [src.bos_text or "<bos>"]
    prefix = system + "\n\n" if system else ""
    if prefix and not any(m.role == "user" for m in rest):
        out.append(f"<start_of_turn>user\n{system.strip()}<end_of_turn>\n")
        prefix = ""
    for m in rest:
        role = "model" if m.role == "assistant" else "user"
        lead = ""
        if prefix and m.role == "user":
            lead, prefix = prefix, ""
        out.append(f"<start_of_turn>{role}\n{lead}{m.content.strip()}<end_of_turn>\n")
    out.append("<start_of_turn>model\n")
    # Gemma checkpoints without chat training (they ship no template, so only they get here)
    # end a turn with the stray token " mendatang" followed by "user"/"model" instead of
    # <end_of_turn>: seen on the bundled Gemma 3 270M base, greedy and sampled.
    return "".join(out), ("<end_of_turn>", " mendatang")


def _chatml(messages: list[ChatMessage], src: TemplateSource) -> tuple[str, tuple[str, ...]]:
    # The common ChatML template (Qwen and others): contents are not trimmed.
    out = [src.bos_text if src.add_bos_token and src.bos_text else ""]
    for m in messages:
        out.append(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n")
    out.append("<|im_start|>assistant\n")
    return "".join(out), ("<|im_end|>",)


def _llama3(messages: list[ChatMessage], src: TemplateSource) -> tuple[str, tuple[str, ...]]:
    # Meta's Llama 3 template: system is its own turn, contents are trimmed.
    out = [src.bos_text or "<|begin_of_text|>"]
    for m in messages:
        out.append(f"<|start_header_id|>{m.role}<|end_header_id|>\n\n"
                   f"{m.content.strip()}<|eot_id|>")
    out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out), ("<|eot_id|>",)


def _llama2(messages: list[ChatMessage], src: TemplateSource) -> tuple[str, tuple[str, ...]]:
    # Meta's Llama 2 chat template: the system block opens the first user message, and every
    # user turn starts with BOS.
    bos, eos = src.bos_text or "<s>", src.eos_text or "</s>"
    system, rest = _split_system(messages)
    pending = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if system else ""
    out: list[str] = []
    for m in rest:
        if m.role == "user":
            content = (pending + m.content).strip()
            pending = ""
            out.append(f"{bos}[INST] {content} [/INST]")
        else:
            out.append(f" {m.content.strip()} {eos}")
    if pending or not out:
        out.append(f"{bos}[INST] {pending.strip()} [/INST]")
    return "".join(out), (eos,)


def _mistral(messages: list[ChatMessage], src: TemplateSource) -> tuple[str, tuple[str, ...]]:
    # Mistral's [INST] template: one BOS, no system role (it is prepended to the first user
    # message), an assistant turn ends with EOS.
    bos, eos = src.bos_text or "<s>", src.eos_text or "</s>"
    system, rest = _split_system(messages)
    pending = system + "\n\n" if system else ""
    out = [bos]
    for m in rest:
        if m.role == "user":
            out.append(f"[INST] {pending}{m.content} [/INST]")
            pending = ""
        else:
            out.append(f"{m.content}{eos}")
    if pending:
        out.append(f"[INST] {pending.strip()} [/INST]")
    return "".join(out), (eos,)


_BUILTIN: dict[str, Callable[[list[ChatMessage], TemplateSource], tuple[str, tuple[str, ...]]]] = {
    GEMMA: _gemma, CHATML: _chatml, LLAMA3: _llama3, LLAMA2: _llama2, MISTRAL: _mistral,
}


@functools.lru_cache(maxsize=4)
def _formatter(template: str, bos: str, eos: str) -> Any:
    # Compiling once per template keeps each turn cheap; the sandbox is set up inside
    # Jinja2ChatFormatter (ImmutableSandboxedEnvironment).
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                               add_generation_prompt=True)


def _render_embedded(messages: Sequence[ChatMessage], src: TemplateSource) -> RenderedPrompt:
    import jinja2

    template = src.chat_template or ""
    try:
        formatter = _formatter(template, src.bos_text, src.eos_text)
        result = formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
    except jinja2.exceptions.SecurityError as err:
        raise ModelFileError(
            f"The model's chat template tried to do something unsafe ({err}) and was stopped.",
            hint="The model file may have been tampered with. Use a model from a source "
                 "you trust.",
        ) from err
    except jinja2.exceptions.TemplateSyntaxError as err:
        raise ModelFileError(f"The model's chat template is broken: {err}",
                             hint="Use another copy or conversion of this model.") from err
    except ValueError as err:  # the template's own raise_exception(...)
        raise ModelFileError(f"The model's chat template refused this conversation: {err}",
                             ) from err
    except Exception as err:
        raise ModelFileError(f"The model's chat template could not be rendered: {err}",
                             hint="Use another copy or conversion of this model.") from err
    stop = [s for s in (src.eos_text, *_TURN_ENDS) if s and (s == src.eos_text
                                                            or s in src.vocab_markers)]
    return RenderedPrompt(text=result.prompt, stop=tuple(dict.fromkeys(stop)),
                          format_name=EMBEDDED)
