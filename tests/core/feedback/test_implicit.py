"""Implicit signals: the rule table, the detector, the conversation signals, the measurement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostdesk.core.feedback.implicit import (
    ABANDON_TIMEOUT_S,
    ImplicitSignal,
    LabelledMessage,
    abandonment_signal,
    continuation_signal,
    detect_signals,
    evaluate,
    load_labelled,
    main,
    parse_labelled,
)
from ghostdesk.core.feedback.signal_rules import (
    ABANDONED,
    CONTINUATION,
    DEFAULT_RULES,
    DEFAULT_WEIGHTS,
    LAUGHTER,
    SCORN,
    TEXT_KINDS,
    UNDERSTOOD,
    Blocker,
    RuleTable,
    SignalRule,
    load_rule_table,
)

LABELLED = Path(__file__).with_name("implicit_messages.tsv")


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


# --------------------------------------------------------------------------- the table


def test_default_table_has_the_product_weights():
    assert DEFAULT_WEIGHTS == {
        LAUGHTER: 1.0,
        UNDERSTOOD: 2.0,
        SCORN: -1.0,
        CONTINUATION: 0.1,
        ABANDONED: -0.5,
    }
    for rule in DEFAULT_RULES.rules:
        assert rule.weight == DEFAULT_WEIGHTS[rule.kind], rule.rule_id
    assert set(DEFAULT_RULES.kinds) == set(TEXT_KINDS)
    assert {"en", "zh"} <= set(DEFAULT_RULES.langs)


SPANISH_TOML = r"""
[[rule]]
id = "es.laughter.jaja"
kind = "laughter"
lang = "es"
patterns = ['\bj+a+(?:j+a+)+\b']
negatable = false
ascii_words = true

[[rule]]
id = "es.understood.me_entiendes"
kind = "understood"
lang = "es"
patterns = ['\bme entiendes\b']
question_cancels = true

[[blocker]]
id = "es.negation"
kinds = ["understood"]
scope = "before"
lang = "es"
patterns = ['\bno\b', '\bnunca\b']
"""


def test_a_new_language_is_added_through_data(tmp_path):
    path = tmp_path / "es.toml"
    path.write_text(SPANISH_TOML, encoding="utf-8")
    table = DEFAULT_RULES.merged(load_rule_table(path))

    assert kinds("jajaja qué risa", table) == {LAUGHTER}
    assert kinds("JAJAJA", table) == {LAUGHTER}
    (signal,) = detect_signals("de verdad me entiendes", table)
    assert (signal.kind, signal.weight, signal.phrase) == (UNDERSTOOD, 2.0, "me entiendes")
    assert signal.rule_id == "es.understood.me_entiendes"
    assert kinds("tú no me entiendes", table) == set()
    assert kinds("¿me entiendes?", table) == set()
    # the default table does not know Spanish
    assert kinds("jajaja") == set()


def test_rows_can_be_added_and_removed_as_dataclasses():
    table = DEFAULT_RULES.extended(
        rules=[
            SignalRule("fr.laughter.mdr", LAUGHTER, 1.0, "fr", (r"\bmdr+\b",), ascii_words=True)
        ],
        blockers=[Blocker("fr.pas_drole", (LAUGHTER,), "message", (r"pas drôle",))],
    )
    assert kinds("mdrrr", table) == {LAUGHTER}
    assert kinds("mdr, pas drôle", table) == set()
    assert kinds("lol", table.without("en.laughter.lol")) == set()
    assert {s.weight for s in detect_signals("lol", table.with_weight(LAUGHTER, 0.5))} == {0.5}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[rule]]\nid = "x"\nkind = "laughter"\npatterns = ["(unclosed"]', "invalid pattern"),
        ('[[rule]]\nid = "x"\nkind = "laughter"\npatterns = ["a"]\ncolour = "red"', "unknown"),
        ('[[rule]]\nid = "x"\nkind = "joy"\npatterns = ["a"]', "needs a weight"),
        ('[[rule]]\nid = "x"\nkind = "laughter"', "missing"),
        ('[[blocker]]\nid = "b"\nkinds = ["laughter"]\nscope = "later"\npatterns = ["a"]', "scope"),
        ('[[rule]]\nid = "en.laughter.lol"\nkind = "laughter"\npatterns = ["a"]', "duplicate"),
        ("[[rules]]\nid = 1", "top-level"),
    ],
)
def test_bad_rule_data_is_rejected_with_the_reason(toml, message):
    with pytest.raises(ValueError, match=message):
        table = DEFAULT_RULES.merged(RuleTable.from_toml(toml))
        detect_signals("x", table)


# --------------------------------------------------------------------------- the conversation

T0 = 1_700_000_000.0


def test_continuation_rewards_each_further_turn():
    assert continuation_signal(0) is None
    first = continuation_signal(1)
    assert first == ImplicitSignal(CONTINUATION, 0.1, "", 0, 0, "conversation.continuation")
    assert continuation_signal(7).weight == 0.1
    assert continuation_signal(2, weight=0.25).weight == 0.25
    assert continuation_signal(3, max_turns=2) is None
    total = sum(s.weight for k in range(1, 6) if (s := continuation_signal(k)))
    assert total == pytest.approx(0.5)


def test_not_abandoned_before_the_timeout():
    now = T0 + ABANDON_TIMEOUT_S - 1
    assert abandonment_signal(T0, None, now, None) is None


def test_abandoned_after_the_timeout_without_reply_or_activity():
    signal = abandonment_signal(T0, None, T0 + ABANDON_TIMEOUT_S, None)
    assert signal == ImplicitSignal(ABANDONED, -0.5, "", 0, 0, "conversation.abandoned")


def test_not_abandoned_when_the_user_replied_in_time():
    assert abandonment_signal(T0, T0 + 30, T0 + 3600, None) is None
    assert abandonment_signal(T0, T0 + ABANDON_TIMEOUT_S, T0 + 3600, None) is None


def test_abandoned_when_the_user_only_came_back_after_the_timeout():
    assert abandonment_signal(T0, T0 + ABANDON_TIMEOUT_S + 1, T0 + 3600, None) is not None


def test_not_abandoned_when_there_was_other_activity_in_the_chat():
    assert abandonment_signal(T0, None, T0 + 3600, last_activity_in_chat=T0 + 5) is None
    # activity before the reply does not count
    assert abandonment_signal(T0, None, T0 + 3600, last_activity_in_chat=T0 - 5) is not None


def test_abandonment_timeout_and_weight_are_settable_and_datetimes_work():
    reply = datetime(2025, 5, 1, 21, 0, tzinfo=UTC)
    later = reply + timedelta(seconds=120)
    assert abandonment_signal(reply, None, later, None, timeout_s=60, weight=-0.2).weight == -0.2
    assert abandonment_signal(reply, None, later, None, timeout_s=300) is None


def test_a_controllable_clock_walks_a_reply_into_abandonment():
    clock = T0
    states = []
    for _ in range(4):
        states.append(abandonment_signal(T0, None, clock, None, timeout_s=90))
        clock += 45
    assert [s is not None for s in states] == [False, False, True, True]


# --------------------------------------------------------------------------- measuring


def test_evaluate_counts_true_and_false_positives_and_negatives():
    report = evaluate(
        [
            ("haha", {LAUGHTER}),  # TP laughter
            ("you get me", set()),  # FP understood
            ("the weather is nice", {SCORN}),  # FN scorn
            ("你懂我 哈哈", {UNDERSTOOD, LAUGHTER}),  # 2 TP
        ]
    )
    assert (report.score(LAUGHTER).tp, report.score(LAUGHTER).fp) == (2, 0)
    assert (report.score(UNDERSTOOD).tp, report.score(UNDERSTOOD).fp) == (1, 1)
    assert report.score(SCORN).fn == 1
    assert (report.overall.tp, report.overall.fp, report.overall.fn) == (3, 1, 1)
    assert report.overall.precision == pytest.approx(0.75)
    assert report.overall.recall == pytest.approx(0.75)
    assert report.messages == 4 and report.exact == 2
    markdown = report.to_markdown()
    assert "| laughter | 2 | 2 | 0 | 0 | 1.000 | 1.000 | 1.000 |" in markdown
    assert "the weather is nice" in markdown


def test_parse_labelled_reads_sections_and_skips_header_and_comments():
    rows = parse_labelled(
        [
            "text\texpected_kinds\n",
            "# section: a\n",
            "haha\tlaughter\n",
            "\n",
            "# just a comment\n",
            "#lol\tlaughter\n",
            "# section: b\n",
            "plain\t-\n",
            "both\tlaughter, scorn\n",
        ]
    )
    assert rows == [
        LabelledMessage("haha", frozenset({LAUGHTER}), "a"),
        LabelledMessage("#lol", frozenset({LAUGHTER}), "a"),
        LabelledMessage("plain", frozenset(), "b"),
        LabelledMessage("both", frozenset({LAUGHTER, SCORN}), "b"),
    ]
    with pytest.raises(ValueError, match="line 1"):
        parse_labelled(["no tab here"])


def test_the_labelled_set_is_big_and_bilingual():
    rows = load_labelled(LABELLED)
    chinese = [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r.text)]
    assert len(rows) >= 170
    assert len(chinese) >= 60
    for kind in TEXT_KINDS:
        assert sum(kind in r.expected for r in rows) >= 30, kind
        assert sum(kind in r.expected for r in chinese) >= 15, kind
    assert sum(not r.expected for r in rows) >= 100
    assert all(r.expected <= set(TEXT_KINDS) for r in rows)
    assert "held-out" in {r.section for r in rows}


def test_precision_and_recall_on_the_labelled_set():
    report = evaluate(load_labelled(LABELLED))
    assert report.overall.precision >= 0.98, report.to_markdown()
    assert report.overall.recall >= 0.95, report.to_markdown()
    for kind in TEXT_KINDS:
        assert report.score(kind).precision >= 0.97, report.to_markdown()
        assert report.score(kind).recall >= 0.93, report.to_markdown()


def test_precision_and_recall_on_the_held_out_section():
    """The held-out rows were written after the table was frozen and are not tuned on."""
    rows = [r for r in load_labelled(LABELLED) if r.section == "held-out"]
    report = evaluate(rows)
    assert report.overall.precision >= 0.95, report.to_markdown()
    assert report.overall.recall >= 0.85, report.to_markdown()


def test_the_command_prints_the_report(capsys):
    assert main([str(LABELLED), "--detect", "哈哈哈 you get me"]) == 0
    out = capsys.readouterr().out
    assert "laughter   +1.0  '哈哈哈'" in out
    assert "## Section: held-out" in out
    assert "**overall (micro)**" in out
