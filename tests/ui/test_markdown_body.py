"""Splitting a reply into Markdown sections keeps its meaning and bounds the work per token."""

from __future__ import annotations

from ghostdesk.ui.markdown_body import (
    CODE_CHUNK_LINES,
    MarkdownBody,
    markdown_to_html,
    pack_sections,
    split_markdown_blocks,
)

TEXT = """Intro line
still the intro

- a
- b

- c, loose
  continued

```python
x = 1

y = 2
```
After the code."""


def test_blocks_split_at_blank_lines_outside_code_and_lists():
    assert split_markdown_blocks(TEXT) == [
        "Intro line\nstill the intro",
        "- a\n- b\n\n- c, loose\n  continued",
        "```python\nx = 1\n\ny = 2\n```",
        "After the code.",
    ]


def test_an_unclosed_fence_keeps_the_rest_as_code():
    assert split_markdown_blocks("Look:\n\n```\ncode\n\nmore") == ["Look:", "```\ncode\n\nmore"]


def test_long_code_is_cut_into_closed_chunks():
    lines = [f"line {i}" for i in range(CODE_CHUNK_LINES + 5)]
    blocks = split_markdown_blocks("```sh\n" + "\n".join(lines) + "\n```")
    assert len(blocks) == 2
    assert all(b.startswith("```sh\n") and b.endswith("```") for b in blocks)
    body = [ln for b in blocks for ln in b.split("\n") if ln.startswith("line")]
    assert body == lines


def test_sections_are_packed_greedily_and_stay_stable_while_text_grows():
    blocks = [f"paragraph {i} " + "x" * 300 for i in range(10)]
    sections = pack_sections(blocks, limit=1000)
    assert "\n\n".join(sections) == "\n\n".join(blocks)
    assert all(len(s) <= 1000 for s in sections)
    grown = pack_sections([*blocks, "one more"], limit=1000)
    assert grown[: len(sections) - 1] == sections[:-1]


def test_body_updates_only_the_changed_section(qtbot):
    body = MarkdownBody(markdown=True)
    qtbot.addWidget(body)
    text = "\n\n".join(f"Paragraph {i} " + "words " * 100 for i in range(8))
    body.set_text(text)
    labels = body.labels()
    assert len(labels) > 2
    before = [label.text() for label in labels]
    body.set_text(text + " and more")
    after = [label.text() for label in body.labels()]
    assert body.labels()[:-1] == labels[:-1]
    assert after[:-1] == before[:-1]
    assert after[-1] != before[-1]
    assert body.sections()[-1].endswith("and more")
    body.set_text("short")
    assert body.sections() == ["short"]
    assert len(body.labels()) == 1


def test_raw_html_from_the_model_is_shown_not_interpreted():
    html = markdown_to_html("Hi <img src='file:///etc/passwd'> **there**", "#eeeeee")
    assert "<img" not in html
    assert "&lt;img" in html
    assert "font-weight" in html  # Markdown itself is still rendered


def test_code_is_tinted():
    html = markdown_to_html("Use `x`:\n\n```\nprint(1)\n```", "#123456")
    assert html.count("#123456") >= 2
