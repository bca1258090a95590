"""Measure the delta: does the new adapter prefer what this person preferred, on feedback it
never trained on, better than the adapter it would replace?

The measure is DPO/KTO's implicit reward: r(x, y) = beta * (log p_adapter(y|x) - log
p_base(y|x)), the base being the same model with the adapter disabled. On held-out feedback:

- KTO (👍/👎 on single replies): preference accuracy is the share of (liked, disliked) pairs
  whose liked reply gets the higher reward (ties count half), so the base model scores
  exactly 0.5; the reward margin is mean reward of liked minus mean reward of disliked.
- DPO (pairs): the share of pairs whose chosen version gets the higher reward; the margin is
  the mean of chosen minus rejected.
- SFT (rewritten replies): the share of targets made more likely than under the base; the
  margin is the mean gain in log-probability per token.

A few held-out prompts are also answered greedily by the base and by the adapter, side by
side, for a person to judge.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ghostdesk.core.training.data import Example

_TIE = 1e-6
MIN_VERDICT_EXAMPLES = 4
"""Fewest held-out examples a "better" / "not better" verdict is given on."""


@dataclass(frozen=True)
class PreferenceScore:
    accuracy: float
    """0.5 is chance (what the base model scores)."""
    reward_margin: float
    examples: int


BASE_SCORE = PreferenceScore(accuracy=0.5, reward_margin=0.0, examples=0)


@dataclass(frozen=True)
class AdoptionDecision:
    recommended: bool
    """The new adapter measured better than the one it would replace."""
    adopt: bool | None
    """True: activate it now; False: keep it only; None: ask the user."""
    reason: str


@dataclass
class EvaluationResult:
    candidate: PreferenceScore
    previous: PreferenceScore
    previous_adapter: str
    decision: AdoptionDecision
    samples: list[dict[str, str]] = field(default_factory=list)


# --- scores from rewards (pure) -----------------------------------------------------------


def score_unpaired(rewards: Sequence[float], labels: Sequence[bool]) -> PreferenceScore:
    liked = [r for r, lab in zip(rewards, labels, strict=True) if lab]
    disliked = [r for r, lab in zip(rewards, labels, strict=True) if not lab]
    n = len(liked) + len(disliked)
    if not n:
        return PreferenceScore(0.5, 0.0, 0)
    if liked and disliked:
        wins = 0.0
        for a in liked:
            for b in disliked:
                wins += 1.0 if a - b > _TIE else 0.5 if abs(a - b) <= _TIE else 0.0
        accuracy = wins / (len(liked) * len(disliked))
        margin = sum(liked) / len(liked) - sum(disliked) / len(disliked)
    else:
        # One kind of rating only: count liked replies made more likely and disliked ones
        # made less likely.
        hits = sum(1.0 if r > _TIE else 0.5 if abs(r) <= _TIE else 0.0 for r in liked)
        hits += sum(1.0 if r < -_TIE else 0.5 if abs(r) <= _TIE else 0.0 for r in disliked)
        accuracy = hits / n
        margin = (sum(liked) - sum(disliked)) / n
    return PreferenceScore(accuracy, margin, n)


def score_paired(chosen: Sequence[float], rejected: Sequence[float]) -> PreferenceScore:
    if not chosen:
        return PreferenceScore(0.5, 0.0, 0)
    diffs = [c - r for c, r in zip(chosen, rejected, strict=True)]
    accuracy = sum(1.0 if d > _TIE else 0.5 if abs(d) <= _TIE else 0.0 for d in diffs)
    return PreferenceScore(accuracy / len(diffs), sum(diffs) / len(diffs), len(diffs))


def score_targets(gains_per_token: Sequence[float]) -> PreferenceScore:
    if not gains_per_token:
        return PreferenceScore(0.5, 0.0, 0)
    acc = sum(1.0 if g > _TIE else 0.5 if abs(g) <= _TIE else 0.0 for g in gains_per_token)
    return PreferenceScore(acc / len(gains_per_token),
                           sum(gains_per_token) / len(gains_per_token), len(gains_per_token))


def decide_adoption(candidate: PreferenceScore, previous: PreferenceScore, mode: str, *,
                    previous_name: str = "the base model") -> AdoptionDecision:
    """Better means a higher held-out accuracy, or the same accuracy with a larger margin.
    `mode` is the adopt setting: "auto", "ask" or "never"."""
    if candidate.examples == 0:
        return AdoptionDecision(False, None if mode == "ask" else False,
                                "There was no held-out feedback to measure the new adapter "
                                "on, so it is kept but not recommended.")
    d_acc = candidate.accuracy - previous.accuracy
    if candidate.examples < MIN_VERDICT_EXAMPLES:
        # One or two held-out ratings say 0 % or 100 % by chance: no verdict, the person
        # decides (ask) or the adapter is only kept (auto, never).
        n = candidate.examples
        return AdoptionDecision(
            False, None if mode == "ask" else False,
            f"Only {n} held-out example{'' if n == 1 else 's'} to measure the new adapter on "
            f"(accuracy {candidate.accuracy:.0%} vs {previous.accuracy:.0%} for "
            f"{previous_name}): too few to tell whether it is better, so it is kept but not "
            f"recommended. Rating more replies gives a surer verdict.")
    better = d_acc > _TIE or (abs(d_acc) <= _TIE and
                              candidate.reward_margin > previous.reward_margin + _TIE)
    figures = (f"held-out preference accuracy {candidate.accuracy:.0%} vs "
               f"{previous.accuracy:.0%} for {previous_name}, on {candidate.examples} "
               f"example{'' if candidate.examples == 1 else 's'}")
    if better:
        reason = f"The new adapter is better: {figures}."
    else:
        reason = f"The new adapter is not better: {figures}."
    if mode == "auto":
        adopt: bool | None = better
    elif mode == "never":
        adopt = False
        if better:
            reason += " It is kept but not used (adopt: never)."
    else:
        adopt = None if better else False
    return AdoptionDecision(better, adopt, reason)


# --- log-probabilities (torch) -------------------------------------------------------------


def _encode(tokenizer: Any, prompt: str, completion: str, max_length: int,
            ) -> tuple[list[int], int]:
    """(ids of prompt + completion, index where the completion starts), tokenized as the
    trainers do it and cut from the left to max_length."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    start = 0
    while start < min(len(p), len(full)) and p[start] == full[start]:
        start += 1
    if len(full) > max_length:
        cut = len(full) - max_length
        full, start = full[cut:], max(1, start - cut)
    return full, max(1, start)


def completion_logprobs(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], *,
                        max_length: int = 512, batch_size: int = 4,
                        ) -> list[tuple[float, int]]:
    """(sum of log-probabilities of the completion tokens, their count) for each pair."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[tuple[float, int]] = []
    encoded = [_encode(tokenizer, p, c, max_length) for p, c in pairs]
    for i in range(0, len(encoded), batch_size):
        chunk = encoded[i:i + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (seq, _) in enumerate(chunk):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            targets = ids[:, 1:].to(device)
            token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        for row, (seq, start) in enumerate(chunk):
            # token t is predicted at position t-1
            span = token_logp[row, start - 1:len(seq) - 1]
            out.append((float(span.sum()), int(span.numel())))
    return out


@contextmanager
def _using(model: Any, adapter: str | None) -> Iterator[None]:
    """Run with one named adapter, or with all adapters disabled (None: the base)."""
    if adapter is None:
        ctx = model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
        with ctx:
            yield
        return
    before = model.active_adapter
    model.set_adapter(adapter)
    try:
        yield
    finally:
        model.set_adapter(before)


def _pairs(examples: Sequence[Example], method: str) -> list[tuple[str, str]]:
    if method == "dpo":
        return [p for e in examples for p in ((e.prompt, e.chosen), (e.prompt, e.rejected))]
    return [(e.prompt, e.completion) for e in examples]


def score_adapter(model: Any, tokenizer: Any, examples: Sequence[Example], method: str, *,
                  adapter: str, beta: float, base_logps: list[tuple[float, int]],
                  max_length: int) -> PreferenceScore:
    with _using(model, adapter):
        logps = completion_logprobs(model, tokenizer, _pairs(examples, method),
                                    max_length=max_length)
    if method == "sft":
        gains = [(a - b) / max(1, n) for (a, n), (b, _) in zip(logps, base_logps, strict=True)]
        return score_targets(gains)
    rewards = [beta * (a - b) for (a, _), (b, _) in zip(logps, base_logps, strict=True)]
    if method == "dpo":
        return score_paired(rewards[0::2], rewards[1::2])
    return score_unpaired(rewards, [bool(e.label) for e in examples])


def side_by_side(model: Any, tokenizer: Any, examples: Sequence[Example], *, adapter: str,
                 max_new_tokens: int, stop_ids: Sequence[int]) -> list[dict[str, str]]:
    """Greedy answers of the base and of the adapter to the same held-out prompts."""
    import torch

    device = next(model.parameters()).device
    samples = []
    for e in examples:
        ids = tokenizer(e.prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids.to(device)
        answers = {}
        for label, name in (("base", None), ("adapter", adapter)):
            with _using(model, name), torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=max_new_tokens, do_sample=False,
                                     eos_token_id=list(stop_ids) or None,
                                     pad_token_id=tokenizer.pad_token_id)
            answers[label] = tokenizer.decode(out[0, ids.shape[1]:],
                                              skip_special_tokens=True).strip()
        samples.append({"prompt": e.display_prompt or e.prompt[-200:], **answers})
    return samples


def evaluate(model: Any, tokenizer: Any, examples: Sequence[Example], method: str, *,
             beta: float, mode: str, previous_adapter: str = "",
             previous_loaded: bool = False, max_length: int = 512, generations: int = 0,
             max_new_tokens: int = 40, stop_ids: Sequence[int] = ()) -> EvaluationResult:
    """Score adapter "default" (the new one) and, when `previous_loaded`, adapter
    "previous" (the one it would replace) on the same held-out examples; else the base."""
    model.eval()
    if examples:
        with _using(model, None):
            base_logps = completion_logprobs(model, tokenizer, _pairs(examples, method),
                                             max_length=max_length)
        candidate = score_adapter(model, tokenizer, examples, method, adapter="default",
                                  beta=beta, base_logps=base_logps, max_length=max_length)
        previous = (score_adapter(model, tokenizer, examples, method, adapter="previous",
                                  beta=beta, base_logps=base_logps, max_length=max_length)
                    if previous_loaded else
                    PreferenceScore(BASE_SCORE.accuracy, 0.0, len(examples)))
    else:
        candidate = PreferenceScore(0.5, 0.0, 0)
        previous = BASE_SCORE
    name = f"adapter {previous_adapter}" if previous_loaded else "the base model"
    decision = decide_adoption(candidate, previous, mode, previous_name=name)
    samples = side_by_side(model, tokenizer, list(examples)[:generations], adapter="default",
                           max_new_tokens=max_new_tokens, stop_ids=stop_ids) if generations else []
    return EvaluationResult(candidate, previous, previous_adapter if previous_loaded else "",
                            decision, samples)
