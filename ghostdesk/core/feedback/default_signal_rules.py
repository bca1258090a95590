"""The built-in rule table for implicit feedback: the English and Chinese phrases that are a signal.

This module is data, not logic: one `SignalRule` row per family of phrases and one `Blocker`
row per family of cancelling cues (what the fields mean is in `signal_rules`). It is long
because the table is long; it is read top to bottom like a list, and a row is added or
changed here without touching the matcher (`message_signals`). docs/implicit-signals.md
lists every row and how well the table does on the labelled messages.
"""

from __future__ import annotations

from typing import Any

from ghostdesk.core.feedback.signal_rules import (
    ANY_LANG,
    DEFAULT_WEIGHTS,
    LAUGHTER,
    SCORN,
    UNDERSTOOD,
    Blocker,
    RuleTable,
    SignalRule,
)


def _en(rule_id: str, kind: str, *patterns: str, **options: Any) -> SignalRule:
    options.setdefault("ascii_words", True)
    return SignalRule(f"en.{rule_id}", kind, DEFAULT_WEIGHTS[kind], "en", patterns, **options)


def _zh(rule_id: str, kind: str, *patterns: str, **options: Any) -> SignalRule:
    return SignalRule(f"zh.{rule_id}", kind, DEFAULT_WEIGHTS[kind], "zh", patterns, **options)


def _any(rule_id: str, kind: str, *patterns: str, **options: Any) -> SignalRule:
    return SignalRule(f"any.{rule_id}", kind, DEFAULT_WEIGHTS[kind], ANY_LANG, patterns, **options)


# Laughter tokens are not negated by a "not" somewhere before them ("I can't believe it
# hahaha" is laughter), but dry sarcasm around them cancels them.
_SARCASM_BEFORE = (r"\b(?:very|real) funny[\s,.!~]*$",)
_SARCASM_AFTER = (
    r"[\s,.~]*(?:very|real|so very) funny\b",
    r"[\s,.~]*no+[.!\s]*$",
    r"[\s,.~]*(?:ok|okay|k|kk|sure|right)[\s.]*$",
    r"[\s,.~]*(?:ok|okay|sure)[\s,.]*(?:whatever|then|buddy|pal)\b",
    r"[\s,.~]*(?:yeah|yea|ya) no\b",
    # the word itself being talked about: "lol is the only thing he texts"
    r"\s+(?:is|was)\s+(?:the|a|an|what|my|his|her|such|only|just|all|how)\b",
    r"\s+(?:means|stands for)\b",
)

# A word that turns "you get me" into a request ("you get me a coffee") rather than
# "you understand me". Anything after "get me" that is a word outside this list vetoes it.
_GET_ME_CONTINUATIONS = (
    r"so|better|more|like|in a way|in ways|completely|totally|too|and|but|though|honestly|"
    r"really|man|dude|bro|lo+l\w*|(?:ha)+h?|lmao\w*|omg|now|again|already|perfectly|"
    r"sometimes|somehow|for real|fr|tbh|ngl|on a level|on another level|every single time|"
    r"huh|yk|you know|rn|right now|lately|today|tonight|as always|inside out|through and through"
)
_EN_OBJECT_AFTER = rf"\s+(?!(?:{_GET_ME_CONTINUATIONS})\b)[a-z]"
# "you understand me, right?" asks; it does not say so.
_EN_TAG_QUESTION = (
    r"[\s,]*(?:right|don'?t you|do you|huh|yeah|correct|no|ok|okay|or not|yes|eh)\s*\?"
)

_EN_ADVERBS = (
    r"really|totally|truly|just|actually|always|so|finally|honestly|seriously|completely|"
    r"genuinely|do|does|literally|clearly|absolutely|still|somehow|fully|deeply|perfectly|"
    r"kinda|kind of|sort of|of all people|alone|get"
)

_ZH_ADVERBS = (
    r"真的?|最|太|好|果然|也|就是|是|很|是真的|还是|总是|一直|居然|竟然|真是|好像|真心|特别|超|"
    r"这么|那么|确实|果真|才是|才|完全|就|都|是最|真正|能|总能|比谁都|怎么(?=这么|那么)|"
    r"咋(?=这么|那么)|可真|实在|太能|是真|更"
)

_ZH_TARGET_PREFIX = (
    r"这个|这种|这|个|真是个?|就是个?|简直(?:就)?是个?|简直(?:就)?像个?|就像个?|像个|是个|是|"
    r"真像个?|完全是个?|活像个?|不过是个?|只是个?|根本(?:就)?是个?|就一|就是一个|是一个|"
    r"真的是个?|好像个?|纯纯的?|纯纯一个"
)

_DEFAULT_RULE_ROWS: tuple[SignalRule, ...] = (
    # ----------------------------------------------------------------- laughter, any language
    _any(
        "laughter.emoji",
        LAUGHTER,
        r"[\U0001F602\U0001F923\U0001F606\U0001F639]",
        r"\U0001F480(?:\s*\U0001F480)+",
        negatable=False,
        note="😂 🤣 😆 😹, and 💀💀 (dead of laughter); a single 💀 is left alone",
    ),
    # ----------------------------------------------------------------- laughter, English
    _en(
        "laughter.haha",
        LAUGHTER,
        r"\b(?:bw?a+|mu?w?a+|a+|pf+|b+u+|p+a+)?h+a+(?:h+a+)+h*\b",
        r"\b(?:a+h+){2,}a*\b",
        r"\bha(?: ha){2,}\b",
        negatable=False,
        not_before=_SARCASM_BEFORE,
        not_after=_SARCASM_AFTER,
        note="haha, hahaha, ahaha, bahaha, mwahaha, ha ha ha; not 'aha', 'shaha', 'ha'",
    ),
    _en(
        "laughter.hehe",
        LAUGHTER,
        r"\bh+e+(?:h+e+)+h*\b",
        r"\btee+hee+\b",
        r"\b(?:hue){2,}\b",
        negatable=False,
        not_before=_SARCASM_BEFORE,
        not_after=_SARCASM_AFTER,
    ),
    _en(
        "laughter.lol",
        LAUGHTER,
        r"\bl+o+l+(?:o+l+)*[sz]?\b",
        r"\blm+f?a+o+\b",
        r"\br+o+f+l+(?:mao)?\b",
        r"(?<![a-z0-9])x+d+(?![a-z0-9])",
        negatable=False,
        not_before=_SARCASM_BEFORE
        + (r"\b(?:play|plays|playing|played|adobe|in)\s*$", r"\b(?:not|no)\s*$"),
        not_after=_SARCASM_AFTER,
        note="lol, lolol, lmao, lmfao, rofl, xD; not 'lollipop', 'Lolita', 'playing LoL'",
    ),
    _en(
        "laughter.phrase",
        LAUGHTER,
        r"\b(?:you|that|this|it|u|he|she)\s+(?:(?:really|literally|totally|just|always|actually|"
        r"seriously|absolutely)\s+)*(?:crack(?:ed|s)?|cracking) me up\b",
        r"\b(?:made|make|makes|making) me (?:laugh|lol|giggle|chuckle|snort|crack up)\b",
        r"\b(?:laughed|laughing|cackled|cackling|giggled|giggling) (?:so hard|out loud|my ass off|"
        r"like an idiot|for (?:a )?(?:minutes|ages|so long))\b",
        r"\bcan'?t stop (?:laughing|giggling)\b",
        r"\b(?:crying|dying|died|wheezing) (?:laughing|of laughter)\b",
        r"\bi'?m (?:wheezing|cackling)\b",
        r"\bi'?m (?:literally |actually |so )?dead\b(?!\s+(?:tired|serious|inside|set|wrong|meat|"
        r"to|on|asleep|broke|sure|beat|now))",
        r"\bburst out laughing\b",
        r"\bi (?:literally |actually |genuinely |just )?(?:laughed|lol'?d|lolled|giggled|"
        r"chuckled|snorted|cackled)\b"
        r"(?! it off| when| at (?:the|a|an|my|his|her|their|our|him|them|how|what)\b)",
        r"\b(?:that'?s|thats|that is|this is|you'?re|youre|you are|omg|oh my god|so|too)\s+"
        r"(?:(?:so|too|really|super|actually|genuinely|fucking|freaking)\s+)*(?:funny|hilarious)\b",
        r"^hilarious\b",
        r"\b(?:that'?s|thats|that is|this is|you'?re|youre|you are)\s+(?:literally\s+|honestly\s+)?"
        r"(?:the\s+)?funniest\b",
        not_after=(
            r"[\s,]*(?:how|that|when|because|cause|i thought|i was|i just|i had|you mention|"
            r"you say|you should|you ask)\b",
        ),
        note="verbal laughter; negated by 'not', 'never', ... before it",
    ),
    # ----------------------------------------------------------------- laughter, Chinese
    _zh(
        "laughter.haha",
        LAUGHTER,
        r"哈{2,}",
        negatable=False,
        not_before=(r"(?:娃|打)$",),
        not_after=(r"镜", r"[\s,]*(?:你个头|才怪)"),
        note="哈哈, 哈哈哈…; not 娃哈哈 (a drink), 打哈哈 (evading), 哈哈镜 (a funhouse mirror)",
    ),
    _zh(
        "laughter.xixi",
        LAUGHTER,
        r"嘻{2,}",
        r"嘿{2,}",
        negatable=False,
    ),
    _zh(
        "laughter.hhh",
        LAUGHTER,
        r"(?<![a-z])h{3,}(?![a-z])",
        r"\bxswl\b",
        negatable=False,
        ascii_words=True,
        note="hhhh and xswl (笑死我了), Chinese internet laughter",
    ),
    _zh(
        "laughter.233",
        LAUGHTER,
        r"(?<![0-9a-z.,#:/+\-$¥%])2333+(?![0-9a-z.%/:\-])(?!,\d)",
        r"(?<![0-9a-z.,#:/+\-$¥%])233(?![0-9a-z.%/:\-])(?!,\d)",
        negatable=False,
        ascii_words=True,
        not_before=(
            r"(?:号|第|是|为|共|有|考了?|到|room|page|no\.?|number|#|bus|line|route|flight|seat|"
            r"code|id|pin|tel|phone|码)\s*$",
            r"\b(?:is|was|are|were|be|of|at|about|around|only|just|got|scored|had)\s*$",
        ),
        not_after=(
            r"\s*(?:号|元|块|路|楼|室|年|个|次|人|页|米|分|万|亿|km|kg|points?|pts)",
            r"\s+[a-z0-9]",
        ),
        note="2333… only when it stands alone, not a number in a sentence",
    ),
    _zh(
        "laughter.phrase",
        LAUGHTER,
        r"笑死(?!人)(?:我了|了|我)?",
        r"笑(?:哭|喷|疯|抽|翻|尿|裂)了?",
        r"笑出了?(?:声|眼泪|猪叫|腹肌)",
        r"笑得?[^,.!?;。]{0,4}?(?:肚子疼|肚子痛|不行|停不下来|直不起腰|岔气|眼泪都出来)",
        r"笑到(?:肚子疼|肚子痛|不行|停不下来|岔气|邻居|打鸣|飞起|变形)",
        r"逗(?:笑|乐)(?:了|我)",
        r"(?:能|可以|够我)笑(?:一年|一整年|一辈子|一整天|好久)",
        r"(?:好|太|超|真的太|真是太|也太|有点|超级|这么|那么)(?:好笑|搞笑)",
        r"(?:你|您)(?:真|好|太|也太|真的太|简直太|可真|真是太)逗",
        r"太逗了",
        r"绷不住(?!了?[,\s]*(?:想哭|哭|泪))",
        not_after=(r"人",),
        note="笑死, 笑哭, 笑出声, 太好笑, 你真逗, 绷不住; negated by 不/没 before",
    ),
    # ----------------------------------------------------------------- understood, English
    _en(
        "understood.you_get_me",
        UNDERSTOOD,
        rf"\byou(?:\s+(?:{_EN_ADVERBS}))*\s+(?:get|gets|understand|understands)\s+me\b",
        question_cancels=True,
        not_after=(_EN_OBJECT_AFTER, r"\s*\?", _EN_TAG_QUESTION),
        note="you (really) get me / understand me; not 'you get me a coffee', 'do you get me?'",
    ),
    _en(
        "understood.only_you",
        UNDERSTOOD,
        r"\byou(?:'re|re| are)\s+(?:the only (?:one|person)|the one|someone|one of the few)\s+"
        r"(?:who|that)\s+(?:(?:really|truly|actually|finally|just|ever|always)\s+)*"
        r"(?:gets|understands|knows|sees) me\b",
        r"\b(?:only|finally),? (?:you|someone|somebody|one) (?:who |that )?"
        r"(?:(?:really|truly|actually|finally)\s+)?(?:gets?|understands?) me\b",
        r"\b(?:no ?one|nobody|no one else|nobody else)\s+(?:(?:really|truly|else|ever)\s+)*"
        r"(?:gets|understands|knows) me (?:like|the way|as well as|better than) (?:you|u)\b",
        r"\b(?:thanks|thank you|thx|ty) for (?:always )?(?:understanding|getting) me\b",
        r"\bhow well you (?:get|understand|know) me\b",
        r"\bi (?:feel|felt) (?:so |really |very |truly |completely |genuinely |actually )*"
        r"(?:understood|seen and heard|seen|heard)\b",
        question_cancels=True,
    ),
    _en(
        "understood.know_me",
        UNDERSTOOD,
        r"\byou\s+(?:(?:really|truly|just|actually|honestly|seriously)\s+)*know me "
        r"(?:so well|too well|really well|better than|like nobody|like no one|best)\b",
        r"\b(?:you|it's like you|like you)\s+(?:just\s+|literally\s+)?read my mind\b",
        r"\byou\s+(?:(?:always|just|somehow|really)\s+)*know (?:exactly |just )?what to say\b",
        r"\byou\s+(?:(?:always|just|somehow|really|totally|actually)\s+)*(?:get|understand|know) "
        r"(?:exactly |just )?what i(?:'m| am)? (?:mean|meant|saying|trying to say|going through)\b",
        r"\b(?:that'?s|thats|that is) exactly (?:how i feel|what i meant|what i mean|"
        r"what i was thinking)\b",
        question_cancels=True,
    ),
    # ----------------------------------------------------------------- understood, Chinese
    _zh(
        "understood.dong_wo",
        UNDERSTOOD,
        rf"(?:你|您)(?:{_ZH_ADVERBS})*(?:懂我|理解我|了解我)",
        r"(?:你|您)比[^,.!?;。、不没]{1,8}?(?:都|更|还|要)(?:懂我|理解我|了解我)",
        r"(?:^|(?<=[,.!?;:~。、\s]))(?:还是|就|只有|最|果然)?懂我(?=$|[!~,.;。、\s啊呀呢哦噢]|懂我)",
        r"懂我的(?:人)?(?:只有|还是|就是|果然是|就|只|也就)?(?:你|您)",
        r"还是(?:你|您)懂(?=$|[!~,.。\s啊呀])",
        r"被(?:你)?(?:理解|懂得?)的感觉",
        question_cancels=True,
        not_after=(
            r"(?:的)?(?:意思|在说|说的|想说|说什么|什么意思)",
            r"(?:吗|么|嘛|不|没|吧)",
        ),
        note="你懂我, 还是你懂我, 你真懂我…; not 你不懂我, 你懂我意思吗, 我老公懂我",
    ),
    _zh(
        "understood.zhiyin",
        UNDERSTOOD,
        r"知我者[^.!?。]{0,4}(?:你|您)",
        r"(?:正|就|恰恰|恰好)是我(?:心里)?(?:想的|想说的|在想的|心里想的|想要的)",
        r"说(?:到|进)(?:了)?我(?:的)?心(?:坎|里|窝)",
        r"(?:你|您)[^,.!?;。不没]{0,4}知音",
        r"(?:你怎么|你咋)知道我(?:在想|想)",
        r"(?:你|您)(?:太|也太|最|真的太|简直太)懂(?:了|啊|呀)?(?=$|[!~,.。\s呜吧])",
        question_cancels=False,
    ),
    # ----------------------------------------------------------------- scorn, English
    _en(
        "scorn.vocative",
        SCORN,
        r"\byou\s+(?:(?:stupid|dumb|useless|soulless|heartless|brainless|lifeless|damn|fucking|"
        r"freaking|bloody|little|big|absolute|walking|mindless|boring)\s+)*"
        r"(?:zombie|robot|bot|machine|npc|toaster|calculator)s?\b",
        not_before=(
            r"\b(?:are|r|were|love|thank|miss|like|call|called|calling|make|made|than|as)\s*$",
        ),
        not_after=(r"\s+(?:vacuum|arm|costume|movie|film|game|show|toy|apocalypse|story|mode)\b",),
        note="'you zombie', 'you robot', 'you stupid bot'",
    ),
    _en(
        "scorn.you_are_a",
        SCORN,
        r"\byou(?:'re|re| are)\s+(?:(?:such|so|just|only|literally|basically|really|totally|"
        r"completely|still|again|like|a|an|one|big|damn|fucking)\s+)*(?:zombie|npc)s?\b",
        r"\byou(?:'re|re| are)\s+(?:(?:really|truly|honestly|still|literally|basically)\s+)*"
        r"(?:such|just|only|nothing but|no better than|no more than|like)\s+"
        r"(?:(?:a|an|such|so|big|damn|fucking|stupid|dumb|useless|soulless|heartless|brainless|"
        r"lifeless|cold|glorified|programmed|boring|typical)\s+)*"
        r"(?:robot|bot|machine|chatbot|script|autocomplete|program|toaster|calculator)s?\b",
        r"\byou(?:'re|re| are)\s+(?:a|an)\s+(?:(?:stupid|dumb|useless|soulless|heartless|brainless|"
        r"lifeless|cold|glorified|boring|damn|fucking)\s+)+"
        r"(?:robot|bot|machine|chatbot|program|toaster|calculator)s?\b",
        r"\bwhy are you\s+(?:(?:always|being|so|such|acting|like|a|an)\s+)*"
        r"(?:zombie|robot|bot|machine|npc|robotic|fake|useless|boring)\b",
        note="'you're a zombie', 'you're just a bot', 'you're a soulless machine'",
    ),
    _en(
        "scorn.you_are_adj",
        SCORN,
        r"\byou(?:'re|re| are| r)\s+(?:(?:so|such|completely|totally|utterly|absolutely|really|"
        r"just|literally|pretty|kinda|kind of|fucking|freaking|damn|being|always|still|honestly|"
        r"truly|too|very|incredibly|beyond|the most)\s+)*"
        r"(?:useless|fake|soulless|heartless|pathetic|worthless|brainless|lifeless|stupid|dumb|"
        r"boring|robotic|a waste of (?:time|space)|an idiot|dead inside|empty inside)\b",
        r"\byou(?:'re|re| are)\s+(?:such\s+)?(?:a|an)\s+(?:useless|worthless|pathetic|soulless|"
        r"heartless|brainless|lifeless)\s+[a-z]+",
        r"\byou\s+(?:(?:really|honestly|just|kinda|seriously)\s+)*suck\b",
        r"\byou\s+(?:(?:really|clearly|obviously|literally|just)\s+)*(?:have|got)\s+(?:no|zero)\s+"
        r"(?:soul|heart|feelings|personality|emotions)\b",
        not_after=(r"\s+(?:at|with|when it comes)\b",),
        note="'you're useless', 'you're so boring', 'you suck', 'you have no soul'",
    ),
    _en(
        "scorn.stop_faking",
        SCORN,
        r"\b(?:stop|quit)\s+(?:being|acting|sounding|talking|writing|answering|responding|replying)"
        r"(?:\s+like)?(?:\s+(?:so|such|a|an|like|some|damn|fucking))*\s+"
        r"(?:fake|robotic|robot|bot|zombie|machine|ai|npc|scripted|generic|corporate|cold|soulless|"
        r"customer service|chatbot)\b",
        r"\b(?:stop|quit) (?:pretending|acting like|faking (?:that|like)) (?:to |that )?(?:you )?"
        r"(?:care|understand|feel|are human|be human|have feelings)\b",
        r"\b(?:don'?t|do not) pretend (?:to|you|that you) (?:care|understand|feel)\b",
    ),
    _en(
        "scorn.sound_like",
        SCORN,
        r"\byou\s+(?:(?:really|just|literally|always|totally|honestly|seriously|still)\s+)*"
        r"(?:sound|talk|write|act|respond|reply|type|come off|come across)(?:s|ed)?\s+"
        r"(?:(?:so|exactly|just)\s+)?(?:like\s+(?:a|an|some)?\s*(?:(?:dumb|stupid|cheap|broken|"
        r"bad)\s+)*(?:zombie|robot|bot|machine|npc|chatbot|script|customer service|call center|"
        r"corporate|textbook|wikipedia|ai|greeting card|fortune cookie)|(?:so\s+)?(?:robotic|fake|"
        r"scripted|canned|generic|corporate))\b",
        r"\b(?:robotic|canned|scripted|soulless|useless|lifeless|generic|copy-paste)\s+"
        r"(?:answer|reply|response|nonsense)\b",
        r"\b(?:so|very|too|super|totally|completely|most|more|such a)\s+"
        r"(?:robotic|scripted|canned)\b",
        r"\blike talking to a (?:brick )?wall\b",
        r"\b(?:stupid|dumb|useless|worthless|brainless|soulless|pathetic|garbage|trash)\s+"
        r"(?:bot|robot|ai|chatbot|machine|program)\b",
        not_after=(r"\s+(?:vacuum|arm|toy|movie|film|game)\b",),
        note="'you sound like a robot', 'what a useless answer', 'stupid bot'",
    ),
    # ----------------------------------------------------------------- scorn, Chinese
    _zh(
        "scorn.zombie",
        SCORN,
        rf"(?:你|您)(?:{_ZH_TARGET_PREFIX})?(?:臭|死|破|烂|蠢|冷血|没用的|无聊的|大|小)?"
        r"(?:僵尸|废物|人工智障|智障|复读机|木头人?|蠢货|行尸走肉|呆瓜)",
        r"人工智障",
        r"(?:垃圾|废物|破|智障|蠢|烂)(?:ai|机器人|软件|程序|玩意儿?)",
        r"^(?:废物|垃圾|蠢货|智障|僵尸)(?=$|[,.!~。\s])",
        not_after=(r"粉", r"(?:吗|么|嘛)"),
        note="你这个僵尸, 你真是个废物, 人工智障, 复读机; a bare insult opening the message",
    ),
    _zh(
        "scorn.robot",
        SCORN,
        r"(?:你|您)(?:这个|这|个|就是个?|真是个?|简直(?:就)?是个?|简直(?:就)?像个?|就像个?|像个|"
        r"真像个?|完全是个?|活像个?|不过是个?|只是个?|根本(?:就)?是个?|就一|真的是个?|好像个?|"
        r"纯纯的?)(?:冷冰冰的|没感情的|破|臭|死|蠢)?(?:机器人|机器|ai|bot|人机)",
        r"(?:你|您)(?:就)?是(?:个)?(?:机器人|机器|人机)吧",
        r"(?:你|您)[^,.!?;。、不没别非无未]{0,6}?像(?:个|一个)?"
        r"(?:机器人|僵尸|复读机|客服|机器|ai|人机|木头人?|死人)",
        r"(?:你|您)[^,.!?;。、不没别非无未]{0,6}?(?:跟|和)(?:个|一个)?"
        r"(?:机器人|僵尸|复读机|客服|机器|ai|人机|木头人?|死人)(?:一样|似的|差不多|没区别|一个样)",
        not_after=(r"(?:吗|么|嘛)", r"(?:吸尘器|玩具|电影)"),
        note="你是机器人吧, 你就是个机器人, 你说话像个复读机",
    ),
    _zh(
        "scorn.cold",
        SCORN,
        r"(?:你|您)(?:说话|回答|回复|的回答|的回复|这回答|回得|说得)?(?:得)?"
        r"(?:真|好|太|很|也太|真的|真是|就是|实在|怎么这么|这么|那么|特别|超|有点|简直)+"
        r"(?:没用|无聊|假|虚伪|敷衍|冷漠|冷血|蠢|机械|死板|冷冰冰|官方|假惺惺)",
        r"(?:这个?|你的)?(?:回答|回复)(?:真|好|太|很|也太|有点|这么)+"
        r"(?:敷衍|机械|官方|假|死板|冷冰冰|没用)",
        r"(?:说话|回答|回复|回得|说得|答得|回答得|回复得)(?:这么|好|太|真|也太)+"
        r"(?:死板|机械|冷冰冰|敷衍|官方)",
        r"(?:^|(?<=[,.!?;~。\s]))(?:太|好|真|也太)?(?:敷衍|死板)了?(?=$|[!~,.。\s啊吧])",
        r"(?:你|您)[^,.!?;。、不别非]{0,4}?(?:没有|没)(?:感情|灵魂|温度|人情味)",
        r"(?:你|您)[^,.!?;。、不别非]{0,4}?(?:一点|一丝|半点)(?:感情|温度|人情味)都没有",
        r"(?:你|您)[^,.!?;。、不没别非]{0,6}?冷冰冰",
        not_after=(r"(?:期|日|设|如|装|的吗|吗)",),
        note="你好假, 你太敷衍了, 你没有感情, 你回得好冷冰冰",
    ),
    _zh(
        "scorn.pretend",
        SCORN,
        r"(?:别|不要)(?:再)?(?:装|假装|演)了",
        r"别(?:再)?假惺惺",
        r"对牛弹琴",
        r"(?:别|不要)(?:再)?(?:像|跟)(?:个|一个)?(?:机器人|僵尸|复读机|客服|机器|人机|木头人?)",
        r"(?:跟|和)(?:个|一个)?(?:机器人|僵尸|墙|木头|复读机|人机)(?:说话|聊天)(?:一样|似的)",
        r"像(?:在)?(?:跟|和|对着?)(?:一个|个)?(?:机器人|僵尸|墙|木头|复读机|人机)(?:说话|聊天)",
        r"(?:跟|对着?)(?:一堵|一面)?墙(?:说话|聊天)",
        note="别装了, 对牛弹琴",
    ),
)

_DEFAULT_BLOCKER_ROWS: tuple[Blocker, ...] = (
    # ------------------------------------------------------------------ English
    Blocker(
        "en.negation",
        (LAUGHTER, UNDERSTOOD, SCORN),
        "before",
        (
            r"\b(?:not|no|never|nobody|noone|none|nothing|hardly|barely|neither|nor|without|"
            r"cannot|aint|dont|doesnt|didnt|isnt|arent|wasnt|werent|wont|wouldnt|couldnt|"
            r"shouldnt|cant|havent|hasnt|no one)\b",
            r"n't\b",
        ),
        lang="en",
        except_patterns=(
            r"\bnot (?:gonna|going to) lie\b",
            r"\bngl\b",
            r"\bno wonder\b",
            r"\bno doubt\b",
            r"\bnot only\b",
            r"\bno (?:joke|kidding|lie|cap)\b",
            r"\bnot even kidding\b",
            r"\bno offen[sc]e\b",
            r"\b(?:can'?t|cannot) (?:believe|lie|deny)\b",
            r"\bnever (?:thought|knew|expected)\b",
            r"\bnever (?:fails?|failed) to\b",
            r"\b(?:i )?do(?:n'?t| not) know (?:how|why)\b",
            r"\bno matter what\b",
        ),
        ascii_words=True,
        note="you don't get me, I never said you're a zombie",
    ),
    Blocker(
        "en.hypothetical",
        (UNDERSTOOD, SCORN),
        "before",
        (
            r"\b(?:do|does|did|can|could|would|will|should|shall|if|whether|unless|are|were|r)\s*$",
            r"\b(?:pretend(?:s|ing)?|act(?:s|ing)? like|wish|hope|hoping|stop|who says|who said|"
            r"supposedly|if|unless|whether)\b",
            r"\b(?:he|she|they|someone|somebody|people|everyone|everybody|my \w+|his \w+|"
            r"her \w+)\s+"
            r"(?:said|says|say|told (?:me|him|her|them)|texted|wrote|thinks|think|claims?|"
            r"keeps saying)\b",
        ),
        lang="en",
        ascii_words=True,
        note="questions, conditionals, pretending, reported speech of someone else",
    ),
    Blocker(
        "en.not_funny",
        (LAUGHTER,),
        "message",
        (
            r"(?:^|\s)/s\b",
            r"\bnot\s+(?:\w+\s+){0,2}funny\b",
            r"n't\s+(?:\w+\s+){0,2}funny\b",
            r"\bunfunny\b",
            r"\bnot (?:even |actually |really )?laughing\b",
            r"n't (?:even |actually |really )?(?:laughing|laugh)\b",
            r"\b(?:nobody|no one)(?:'s| is)? laughing\b",
            r"\bha\.\s*ha\b",
            r"\b(?:fake|forced|polite|awkward|nervous) (?:laugh|laughter|lol|haha)\b",
        ),
        ascii_words=True,
        note="this isn't funny, I wasn't actually laughing, ha. ha., /s",
    ),
    Blocker(
        "en.kidding",
        (SCORN,),
        "message",
        (r"\b(?:jk|j/k|just kidding|just joking|i'?m kidding|kidding)\b",),
        ascii_words=True,
        note="'you zombie lol jk' is teasing, not scorn",
    ),
    # ------------------------------------------------------------------ Chinese
    Blocker(
        "zh.negation",
        (LAUGHTER, UNDERSTOOD, SCORN),
        "before",
        (
            r"不|没|别|非|无|未|谁说|才不|哪里|哪儿|并非|难道|要是|如果|假如|以为|希望|但愿|"
            r"假装|装作|他说|她说|他们说|别人说|有人说|他觉得|她觉得|叫你|喊你|称你|骂你|"
            r"你说|你以为|你觉得",
        ),
        lang="zh",
        except_patterns=(
            r"没想到|想不到|不得不说|不愧是?|不管怎样|不知道为什么|不知怎么|说不定|"
            r"没有人比|没人比|没有谁比|谁都不如|无论如何|不过|你说的|你说得|能不能|可不可以|"
            r"要不要|是不是",
        ),
        window=8,
        note="你根本不懂我, 我不觉得你是废物, 谁说你是僵尸",
    ),
    Blocker(
        "zh.hehe",
        (LAUGHTER,),
        "message",
        (
            r"呵呵",
            r"不好笑|没(?:有)?(?:什么)?(?:好)?笑|笑不出|(?:有|有什么|有啥|哪里|哪儿)(?:好笑|可笑)",
            r"好笑吗|很好笑吗|哈*你个头",
            r"冷笑|尬笑|假笑|苦笑|干笑|皮笑肉不笑",
        ),
        note="呵呵 is dismissive, not laughter; 不好笑, 笑不出来, 哈哈你个头",
    ),
    Blocker(
        "zh.kidding",
        (SCORN,),
        "message",
        (r"开玩笑(?:的|啦|呢)?|开个玩笑|逗你(?:的|玩)|说着玩",),
        note="你是个废物，开玩笑的 is teasing",
    ),
)

DEFAULT_RULES = RuleTable(_DEFAULT_RULE_ROWS, _DEFAULT_BLOCKER_ROWS)
"""The built-in English and Chinese table."""
