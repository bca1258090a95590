"""Chat formats: built-in turns match each family's reference template byte for byte, model
templates run only in the sandbox, and the Gemma prompt tokenizes to the right tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostdesk.core.errors import ModelFileError
from ghostdesk.core.llm.chat_format import (
    CHATML,
    EMBEDDED,
    GEMMA,
    LLAMA2,
    LLAMA3,
    MISTRAL,
    ChatTemplateData,
    choose_format,
    render_chat,
)
from ghostdesk.core.llm.gguf_info import read_model_info
from ghostdesk.core.llm.types import ChatMessage

GEMMA_SRC = ChatTemplateData(architecture="gemma3", bos_text="<bos>", eos_text="<eos>",
                             add_bos_token=True,
                             vocab_markers=frozenset({"<start_of_turn>", "<end_of_turn>"}))
QWEN_SRC = ChatTemplateData(architecture="qwen2", eos_text="<|im_end|>",
                            vocab_markers=frozenset({"<|im_start|>", "<|im_end|>"}))
LLAMA3_SRC = ChatTemplateData(architecture="llama", bos_text="<|begin_of_text|>",
                              eos_text="<|end_of_text|>", add_bos_token=True,
                              vocab_markers=frozenset({"<|start_header_id|>", "<|eot_id|>"}))


def sys_(text: str) -> ChatMessage:
    return ChatMessage("system", text)


def user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def bot(text: str) -> ChatMessage:
    return ChatMessage("assistant", text)


# Google's Gemma 3 chat template (as shipped in the instruction-tuned GGUFs).
GOOGLE_GEMMA3 = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

# Meta's Llama 3 template and the common ChatML template.
META_LLAMA3 = (
    r"{% set loop_messages = messages %}{% for message in loop_messages %}"
    r"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    r"+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    r"{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    r"{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    r"{% endif %}"
)
CHATML_TEMPLATE = (
    r"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    r"message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    r"{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CONVERSATIONS = [
    [user("Hi!")],
    [sys_("You are Ghost."), user("Hi!")],
    [sys_("Be kind.\n"), user("  Hello \n"), bot(" Hi there! \n"), user("How are you?")],
    [user("a"), bot("b"), user("c"), bot("d"), user("e")],
]


def test_gemma_one_turn() -> None:
    out = render_chat([user("Hello!")], GEMMA_SRC)
    assert out.text == "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n"
    assert out.stop == ("<end_of_turn>", " mendatang")
    assert out.stop_tokens == ("<start_of_turn>", "<end_of_turn>")
    assert out.format_name == GEMMA


def test_gemma_system_merges_into_first_user_turn() -> None:
    out = render_chat([sys_("You are Ghost."), user("Hi!")], GEMMA_SRC)
    assert out.text == ("<bos><start_of_turn>user\nYou are Ghost.\n\nHi!<end_of_turn>\n"
                        "<start_of_turn>model\n")


def test_gemma_multi_turn() -> None:
    out = render_chat([sys_("S"), user("one"), bot("two"), user("three")], GEMMA_SRC)
    assert out.text == (
        "<bos><start_of_turn>user\nS\n\none<end_of_turn>\n"
        "<start_of_turn>model\ntwo<end_of_turn>\n"
        "<start_of_turn>user\nthree<end_of_turn>\n"
        "<start_of_turn>model\n")


def test_gemma_without_user_turn_keeps_the_system_text() -> None:
    out = render_chat([sys_("Only system.")], GEMMA_SRC)
    assert out.text == ("<bos><start_of_turn>user\nOnly system.<end_of_turn>\n"
                        "<start_of_turn>model\n")


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_gemma_matches_googles_template(messages: list[ChatMessage]) -> None:
    google = ChatTemplateData(architecture="gemma3", chat_template=GOOGLE_GEMMA3,
                              bos_text="<bos>", eos_text="<eos>")
    assert render_chat(messages, GEMMA_SRC).text == render_chat(messages, google).text


def test_chatml() -> None:
    out = render_chat([sys_("S"), user("hi"), bot("yo"), user("bye")], QWEN_SRC)
    assert out.text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n"
        "<|im_start|>assistant\n")
    assert out.stop == ("<|im_end|>",)
    assert out.format_name == CHATML


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_chatml_matches_reference_template(messages: list[ChatMessage]) -> None:
    ref = ChatTemplateData(architecture="qwen2", chat_template=CHATML_TEMPLATE)
    assert render_chat(messages, QWEN_SRC).text == render_chat(messages, ref).text


def test_llama3() -> None:
    out = render_chat([sys_("S"), user("hi ")], LLAMA3_SRC)
    assert out.text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert out.stop == ("<|eot_id|>",)
    assert out.format_name == LLAMA3


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_llama3_matches_metas_template(messages: list[ChatMessage]) -> None:
    ref = ChatTemplateData(architecture="llama", chat_template=META_LLAMA3,
                           bos_text="<|begin_of_text|>")
    assert render_chat(messages, LLAMA3_SRC).text == render_chat(messages, ref).text


def test_llama2_and_mistral() -> None:
    msgs = [sys_("S"), user("hi"), bot("yo"), user("bye")]
    llama2 = render_chat(msgs, ChatTemplateData(architecture="llama", bos_text="<s>",
                                                eos_text="</s>"))
    assert llama2.format_name == LLAMA2
    assert llama2.text == ("<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nhi [/INST] yo </s>"
                           "<s>[INST] bye [/INST]")
    mistral = render_chat(msgs, ChatTemplateData(architecture="mistral", bos_text="<s>",
                                                 eos_text="</s>"))
    assert mistral.format_name == MISTRAL
    assert mistral.text == "<s>[INST] S\n\nhi [/INST]yo</s>[INST] bye [/INST]"
    assert llama2.stop == mistral.stop == ("</s>",)


@pytest.mark.parametrize(("src", "name"), [
    (ChatTemplateData(architecture="gemma"), GEMMA),
    (ChatTemplateData(architecture="gemma2"), GEMMA),
    (ChatTemplateData(architecture="gemma3"), GEMMA),
    (ChatTemplateData(architecture="qwen2"), CHATML),
    (ChatTemplateData(architecture="qwen3"), CHATML),
    (ChatTemplateData(architecture="somethingnew"), CHATML),
    (ChatTemplateData(architecture="llama"), LLAMA2),
    (LLAMA3_SRC, LLAMA3),
    (ChatTemplateData(architecture="mistral"), MISTRAL),
    (ChatTemplateData(architecture="llama", vocab_markers=frozenset({"<|im_start|>"})), CHATML),
    (ChatTemplateData(architecture="gemma3", chat_template="{{ 'x' }}"), EMBEDDED),
])
def test_choose_format(src: ChatTemplateData, name: str) -> None:
    assert choose_format(src) == name


def test_embedded_template_is_used() -> None:
    src = ChatTemplateData(
        architecture="gemma3", bos_text="<B>", eos_text="<E>",
        vocab_markers=frozenset({"<end_of_turn>"}),
        chat_template="{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]"
                      "{% endfor %}{% if add_generation_prompt %}[assistant:{% endif %}")
    out = render_chat([sys_("S"), user("hi")], src)
    assert out.text == "<B>[system:S][user:hi][assistant:"
    assert out.format_name == EMBEDDED
    assert out.stop == ("<E>", "<end_of_turn>")


def test_embedded_template_from_a_gguf_file(tiny_gguf) -> None:
    path = tiny_gguf("qwen2", template=CHATML_TEMPLATE)
    info = read_model_info(path)
    out = render_chat([user("hi")], info)
    assert out.format_name == EMBEDDED
    assert out.text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}",
    "{{ joiner.__init__.__globals__.__builtins__.__import__('os').system('touch {marker}') }}",
    "{% for m in messages %}{{ m.update({'role': 'x'}) }}{% endfor %}",
    "{{ messages.append({'role': 'user'}) }}",
])
def test_sandbox_escape_is_refused(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    src = ChatTemplateData(architecture="gemma3", bos_text="<bos>",
                           chat_template=template.replace("{marker}", str(marker)))
    with pytest.raises(ModelFileError, match="chat template tried to do something unsafe"):
        render_chat([user("hi")], src)
    assert not marker.exists()


def test_broken_template_is_a_clear_error() -> None:
    src = ChatTemplateData(chat_template="{% for m in messages %}no end")
    with pytest.raises(ModelFileError, match="chat template is broken"):
        render_chat([user("hi")], src)


def test_template_refusing_the_conversation() -> None:
    src = ChatTemplateData(chat_template=GOOGLE_GEMMA3, bos_text="<bos>")
    with pytest.raises(ModelFileError, match="refused this conversation: Conversation roles"):
        render_chat([user("a"), user("b")], src)


@pytest.mark.model
def test_gemma_prompt_tokenizes_to_single_special_tokens(model_path: Path) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    try:
        info = read_model_info(model_path)
        out = render_chat([sys_("You are Ghost."), user("Hi!"), bot("Hello."), user("Bye")],
                          info)
        tokens = llm.tokenize(out.text.encode(), add_bos=False, special=True)
        sot = llm.tokenize(b"<start_of_turn>", add_bos=False, special=True)
        eot = llm.tokenize(b"<end_of_turn>", add_bos=False, special=True)
        assert len(sot) == 1 and len(eot) == 1
        assert tokens[0] == llm.token_bos() == info.bos_token_id
        assert tokens.count(llm.token_bos()) == 1
        assert tokens.count(sot[0]) == 4  # three turns plus the opened model turn
        assert tokens.count(eot[0]) == 3
        assert llm.detokenize(tokens, special=True).decode() == out.text
    finally:
        llm.close()
