"""Training text is the chat's text: prompts rendered by render_chat, replies cut after the
end-of-turn marker, token ids equal to llama.cpp's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.llm.chat_format import ChatTemplateData, render_chat
from ghostdesk.core.llm.types import ChatMessage
from ghostdesk.core.training.data import (
    Example,
    load_examples,
    render_completion,
    split_examples,
    to_trl_rows,
)
from tests.core.training.conftest import GemmaBase, write_jsonl

GEMMA = ChatTemplateData(architecture="gemma3", bos_text="<bos>", eos_text="<eos>",
                         vocab_markers=frozenset({"<start_of_turn>", "<end_of_turn>"}))
CHATML = ChatTemplateData(architecture="qwen2", eos_text="<|im_end|>",
                          vocab_markers=frozenset({"<|im_start|>", "<|im_end|>"}))
LLAMA3 = ChatTemplateData(architecture="llama", bos_text="<|begin_of_text|>",
                          eos_text="<|eot_id|>",
                          vocab_markers=frozenset({"<|start_header_id|>", "<|eot_id|>"}))
LLAMA2 = ChatTemplateData(architecture="llama", bos_text="<s>", eos_text="</s>")
MSGS = [ChatMessage("system", "You are Ghost."), ChatMessage("user", "Hi there!"),
        ChatMessage("assistant", "Hello."), ChatMessage("user", "Tea?")]


@pytest.mark.parametrize(("src", "completion"), [
    (GEMMA, "Yes please 🙂<end_of_turn>"),
    (CHATML, " Yes please 🙂 <|im_end|>"),
    (LLAMA3, "Yes please 🙂<|eot_id|>"),
    (LLAMA2, " Yes please 🙂 </s>"),
])
def test_prompt_is_the_chat_prompt_and_reply_ends_its_turn(src: ChatTemplateData,
                                                           completion: str) -> None:
    prompt, reply, marker = render_completion(MSGS, " Yes please 🙂 ", src)
    assert prompt == render_chat(MSGS, src).text  # byte for byte what the chat sends
    assert reply == completion
    assert reply.endswith(marker)
    # prompt + reply is how the next turn's prompt begins
    nxt = render_chat([*MSGS, ChatMessage("assistant", " Yes please 🙂 "),
                       ChatMessage("user", "x")], src).text
    assert nxt.startswith(prompt + reply)


def test_loads_all_three_formats(tmp_path: Path) -> None:
    prompt = [{"role": "user", "content": "Tea?"}]
    kto = write_jsonl(tmp_path / "kto.jsonl", [
        {"prompt": prompt, "completion": [{"role": "assistant", "content": "Yes"}],
         "label": True, "weight": 2.0, "meta": {"split": "eval", "message_ids": [3]}},
        {"prompt": prompt, "completion": [{"role": "assistant", "content": "No"}],
         "label": False}])
    loaded = load_examples(kto, "kto", GEMMA)
    first, second = loaded.examples
    assert first.prompt == "<bos><start_of_turn>user\nTea?<end_of_turn>\n<start_of_turn>model\n"
    assert (first.completion, first.label, first.weight, first.split) == (
        "Yes<end_of_turn>", True, 2.0, "eval")
    assert second.label is False and loaded.end_marker == "<end_of_turn>"
    assert first.display_prompt == "Tea?"

    dpo = write_jsonl(tmp_path / "dpo.jsonl", [
        {"prompt": prompt, "chosen": [{"role": "assistant", "content": "Yes"}],
         "rejected": [{"role": "assistant", "content": "No"}]}])
    (pair,) = load_examples(dpo, "dpo", GEMMA).examples
    assert (pair.chosen, pair.rejected) == ("Yes<end_of_turn>", "No<end_of_turn>")

    sft = write_jsonl(tmp_path / "sft.jsonl", [
        {"messages": [*prompt, {"role": "assistant", "content": "Better"}]}])
    (target,) = load_examples(sft, "sft", GEMMA).examples
    assert target.completion == "Better<end_of_turn>" and target.prompt == first.prompt
    # liked KTO replies are SFT targets; disliked ones are left out
    as_sft = load_examples(kto, "sft", GEMMA)
    assert [e.completion for e in as_sft.examples] == ["Yes<end_of_turn>"]
    assert as_sft.skipped == 1


@pytest.mark.parametrize(("line", "words"), [
    ('{"prompt": [{"role": "user", "content": "x"}], "chosen": "a", "rejected": "b"}',
     "this is a DPO pair"),
    ('{"prompt": [{"role": "user", "content": "x"}], "completion": "a", "label": "yes"}',
     "label must be true or false"),
    ('{"prompt": [], "completion": "a", "label": true}', "non-empty list of messages"),
    ('{"prompt": [{"role": "x", "content": "x"}], "completion": "a", "label": true}',
     "valid role"),
    ('[1, 2]', "one JSON object"),
    ('{"prompt": [{"role": "user", "content": "x"}], "completion": "a", "label": true, '
     '"weight": -1}', "weight must be a positive number"),
])
def test_bad_records_name_the_line(tmp_path: Path, line: str, words: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": [{"role": "user", "content": "x"}], "completion": "a", '
                    '"label": true}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(TrainingError) as err:
        load_examples(path, "kto", GEMMA)
    assert err.value.message.startswith("Line 2 of the training data bad.jsonl")
    assert words in err.value.message


def test_held_out_split() -> None:
    train = [Example(f"p{i}", "c", label=bool(i % 2)) for i in range(20)]
    kept, held = split_examples(train, None)
    assert len(held) == 4 and len(kept) == 16 and not set(map(id, held)) & set(map(id, kept))
    assert split_examples(train, None) == (kept, held)  # stable
    marked = [*train[:3], Example("e", "c", label=True, split="eval")]
    assert split_examples(marked, None) == (train[:3], [marked[3]])
    given = [Example("x", "y", label=True)]
    assert split_examples(train, given) == (train, given)
    assert split_examples(train, []) == (train, [])  # an empty eval file: nothing held out


def test_kto_rows_mix_labels_and_repeat_weighted() -> None:
    ex = [Example("a", "1", label=True, weight=2.0), Example("b", "2", label=True),
          Example("c", "3", label=False, weight=9.0)]
    rows = to_trl_rows(ex, "kto")
    assert [r["label"] for r in rows] == [True, False, True, False, True, False]
    assert sum(r["prompt"] == "c" for r in rows) == 3  # capped
    assert sum(r["prompt"] == "a" for r in rows) == 2


@pytest.mark.model
def test_training_tokens_equal_chat_tokens(gemma_training_base: GemmaBase,
                                          model_path: Path, tmp_path: Path) -> None:
    """The HF tokenizer the trainer uses gives llama.cpp's token ids for the training text."""
    import llama_cpp

    from ghostdesk.bench.learning import synthetic_kto_records
    from ghostdesk.core.llm.gguf_info import read_model_info
    from ghostdesk.core.training.base_model import TrainingBase, load_tokenizer

    info = read_model_info(model_path)
    path = write_jsonl(tmp_path / "t.jsonl", synthetic_kto_records(10))
    examples = load_examples(path, "kto", info).examples
    base = TrainingBase(gemma_training_base.model_dir, "gguf", "gemma3", model_path, "")
    tokenizer = load_tokenizer(base)  # as the job loads it
    vocab = llama_cpp.Llama(model_path=str(model_path), vocab_only=True, n_ctx=64,
                            verbose=False)
    try:
        for e in examples:
            text = e.prompt + e.completion
            expected = list(vocab.tokenize(text.encode(), add_bos=False, special=True))
            assert tokenizer(text)["input_ids"] == expected, text
            assert expected[0] == info.bos_token_id and expected.count(info.bos_token_id) == 1
    finally:
        vocab.close()
