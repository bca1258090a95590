"""Reading implicit signals from the words of a message: what must and must not be found, and
the phrase each signal points at."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostdesk.core.feedback.default_signal_rules import DEFAULT_RULES
from ghostdesk.core.feedback.message_signals import detect_signals
from ghostdesk.core.feedback.signal_rules import (
    LAUGHTER,
    SCORN,
    UNDERSTOOD,
    RuleTable,
    SignalRule,
)


def kinds(text: str, rules: RuleTable = DEFAULT_RULES) -> set[str]:
    return {signal.kind for signal in detect_signals(text, rules)}


# --------------------------------------------------------------------------- must pass

CLEAR_POSITIVES = [
    # laughter
    ("haha", {LAUGHTER}),
    ("hahahahahaha", {LAUGHTER}),
    ("ahaha stop it", {LAUGHTER}),
    ("hehe", {LAUGHTER}),
    ("lol", {LAUGHTER}),
    ("LMAO", {LAUGHTER}),
    ("rofl", {LAUGHTER}),
    ("xD", {LAUGHTER}),
    ("😂", {LAUGHTER}),
    ("🤣🤣", {LAUGHTER}),
    ("😆", {LAUGHTER}),
    ("you crack me up", {LAUGHTER}),
    ("that's hilarious", {LAUGHTER}),
    ("哈哈", {LAUGHTER}),
    ("哈哈哈哈哈哈", {LAUGHTER}),
    ("笑死我了", {LAUGHTER}),
    ("2333", {LAUGHTER}),
    ("23333333", {LAUGHTER}),
    ("hhhhh", {LAUGHTER}),
    ("ｈａｈａｈａ", {LAUGHTER}),
    ("哈哈lol", {LAUGHTER}),
    # understood
    ("you get me", {UNDERSTOOD}),
    ("you understand me", {UNDERSTOOD}),
    ("you really get me", {UNDERSTOOD}),
    ("you know me so well", {UNDERSTOOD}),
    ("nobody gets me like you do", {UNDERSTOOD}),
    ("你懂我", {UNDERSTOOD}),
    ("懂我！", {UNDERSTOOD}),
    ("还是你懂我", {UNDERSTOOD}),
    ("你真懂我", {UNDERSTOOD}),
    ("没想到你这么懂我", {UNDERSTOOD}),
    ("你太懂了吧", {UNDERSTOOD}),
    # scorn
    ("you zombie", {SCORN}),
    ("you're a zombie", {SCORN}),
    ("you're useless", {SCORN}),
    ("stop being so fake", {SCORN}),
    ("you’re just a bot", {SCORN}),
    ("你这个僵尸", {SCORN}),
    ("你是机器人吧", {SCORN}),
    ("人工智障", {SCORN}),
    # several kinds in one message
    ("hahaha you get me", {LAUGHTER, UNDERSTOOD}),
    ("哈哈哈你个僵尸", {LAUGHTER, SCORN}),
]

HARD_NEGATIVES = [
    # negation before the phrase
    ("this isn't funny, haha no", set()),
    ("you don't get me", set()),
    ("you never understand me", set()),
    ("I don't think you get me", set()),
    ("你不懂我", set()),
    ("你根本不懂我", set()),
    ("没人懂我", set()),
    ("没有笑", set()),
    ("我没有笑", set()),
    ("you're not useless", set()),
    ("I never said you're a zombie", set()),
    ("我不觉得你是废物", set()),
    # questions and requests
    ("do you get me?", set()),
    ("you get me?", set()),
    ("you understand me, right?", set()),
    ("can you get me a coffee", set()),
    ("你懂我意思吗", set()),
    ("你懂我吗？", set()),
    ("are you a robot?", set()),
    ("你是机器人吗？", set()),
    # quoting and reported speech
    ("she said 'you get me' to her dog", set()),
    ('my boyfriend says "you get me" to everyone', set()),
    ("他说“你懂我”", set()),
    ("她说：你懂我", set()),
    ("他只回了我一句「哈哈」", set()),
    ('"you zombie" is what my brother yells at his xbox', set()),
    # sarcasm
    ("haha very funny", set()),
    ("lol ok", set()),
    ("haha... no", set()),
    ("great advice /s lol", set()),
    ("ha. ha. hilarious.", set()),
    ("呵呵", set()),
    ("哈哈哈呵呵", set()),
    ("哈哈你个头", set()),
    # teasing is not scorn
    ("you zombie lol jk", {LAUGHTER}),
    ("你是个废物，开玩笑的哈哈", {LAUGHTER}),
    # lookalike words and numbers
    ("I had a lollipop", set()),
    ("Shahana is here", set()),
    ("my cat Lolita", set()),
    ("holla at me", set()),
    ("aha! found it", set()),
    ("ha", set()),
    ("我买了一瓶娃哈哈", set()),
    ("别跟我打哈哈", set()),
    ("哈哈镜", set()),
    ("I scored 233 points", set()),
    ("room 2333", set()),
    ("12333", set()),
    ("我考了233分", set()),
    ("我家门牌号是2333", set()),
    # aimed at someone else, or at oneself
    ("my boss is such a robot", set()),
    ("I feel like a zombie today", set()),
    ("我今天像个僵尸一样", set()),
    ("我真是个废物", set()),
    ("我老公懂我", set()),
    # URLs and code
    ("https://haha.example.com/lol", set()),
    ("see www.lol.com", set()),
    ("`print('hahaha')`", set()),
    ("open lol_final.txt", set()),
]


@pytest.mark.parametrize(("text", "expected"), CLEAR_POSITIVES + HARD_NEGATIVES)
def test_must_pass_examples(text, expected):
    assert kinds(text) == expected


def test_each_signal_carries_the_kind_weight_and_its_rule():
    signals = detect_signals("hahaha you get me, you zombie")
    by_kind = {s.kind: s for s in signals}
    assert set(by_kind) == {LAUGHTER, UNDERSTOOD, SCORN}
    assert by_kind[LAUGHTER].weight == 1.0
    assert by_kind[UNDERSTOOD].weight == 2.0
    assert by_kind[SCORN].weight == -1.0
    assert all(s.rule_id for s in signals)
    assert [s.start for s in signals] == sorted(s.start for s in signals)


def test_at_most_one_signal_per_kind_the_first():
    signals = detect_signals("lol hahaha 😂 笑死")
    assert [(s.kind, s.phrase) for s in signals] == [(LAUGHTER, "lol")]


def test_a_stronger_rule_of_the_same_kind_wins():
    table = DEFAULT_RULES.extended(
        [SignalRule("test.big_laugh", LAUGHTER, 3.0, "en", (r"\bbig laugh\b",))]
    )
    signals = detect_signals("lol that was a big laugh", table)
    assert [(s.phrase, s.weight, s.rule_id) for s in signals] == [
        ("big laugh", 3.0, "test.big_laugh")
    ]


def test_a_later_match_counts_when_the_first_is_quoted():
    text = "she wrote 'haha' and I actually laughed out loud, haha"
    (signal,) = detect_signals(text)
    assert signal.kind == LAUGHTER
    assert signal.start > text.index("'haha'") + len("'haha'")


def test_no_signal_in_empty_or_plain_messages():
    assert detect_signals("") == []
    assert detect_signals("what should I cook tonight") == []
    assert detect_signals("今天加班到十点，好累") == []


# --------------------------------------------------------------------------- the phrase


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("ｈａｈａｈａ，你太逗了", "ｈａｈａｈａ"),
        ("ＬＯＬ that's so true", "ＬＯＬ"),
        ("ＹＯＵ ＧＥＴ ＭＥ", "ＹＯＵ ＧＥＴ ＭＥ"),
        ("well... You Get Me!", "You Get Me"),
        ("honestly, you’re useless", "you’re useless"),
        ("你懂我！！", "你懂我"),
        ("ok 😂😂", "😂"),
    ],
)
def test_the_phrase_is_the_exact_original_substring(text, phrase):
    (signal,) = detect_signals(text)
    assert signal.phrase == phrase
    assert text[signal.start : signal.end] == phrase


def test_combining_characters_map_back_to_the_original():
    text = "cafe\u0301 talk... you get me"
    (signal,) = detect_signals(text)
    assert signal.phrase == "you get me"
    assert text[signal.start : signal.end] == "you get me"


def test_characters_that_expand_under_nfkc_map_back_whole():
    text = "\u3231 lol"  # ㈱ expands to "(株)" under NFKC
    (signal,) = detect_signals(text)
    assert text[signal.start : signal.end] == "lol"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "haha",
                "ＬＯＬ",
                "you get me",
                "你懂我",
                "不",
                "not ",
                "'",
                '"',
                "“",
                "”",
                " ",
                "😂",
                "e\u0301",
                "ﬁ",
                "2333",
                ",",
                "?",
                "呵呵",
                "you zombie",
                "http://x.io/",
            ]
        )
        | st.text(max_size=3),
        max_size=8,
    ).map("".join)
)
def test_signals_always_point_at_their_phrase(text):
    signals = detect_signals(text)
    assert len({s.kind for s in signals}) == len(signals)
    for signal in signals:
        assert text[signal.start : signal.end] == signal.phrase
        assert signal.phrase
