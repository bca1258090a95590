"""What the Training tab says, in words: a line per event for the log, durations, the figures
under the progress bar, the measured result and the side-by-side answers (HTML), the question
whether to use a new adapter, what a preset means here, and how much feedback is missing.

Plain functions of the core's events and plans, so the widgets only place the text.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ghostdesk.core.training.evaluation import MIN_VERDICT_EXAMPLES

if TYPE_CHECKING:
    from ghostdesk.core.settings import TrainingSettings
    from ghostdesk.core.training.events import Evaluated, Step
    from ghostdesk.core.training.planner import MethodData
    from ghostdesk.ui.theme import Theme


def describe_event(event: Any) -> str:
    """One line for the event log."""
    kind = event.kind
    if kind == "preparing":
        return event.stage
    if kind == "started":
        where = "the GPU" if event.device == "cuda" else "the CPU"
        base = "its Hugging Face folder" if event.base == "hf-folder" else "the chat model"
        line = (
            f"Started: {event.method.upper()}, {event.preset} preset, on {where} from "
            f"{base}{' (4-bit)' if event.load_in_4bit else ''}; "
            f"{event.train_examples} training and {event.eval_examples} held-out "
            f"examples, {event.max_steps} steps"
        )
        if event.resumed_from_step:
            line += f"; resumed from step {event.resumed_from_step}"
        return line + "."
    if kind == "step":
        parts = [f"Step {event.step}/{event.max_steps}", f"loss {_num(event.loss)}"]
        if event.reward_margin is not None:
            parts.append(f"reward margin {event.reward_margin:+.3f}")
        if event.tokens_per_second:
            parts.append(f"{event.tokens_per_second:.1f} tokens/s")
        return " · ".join(parts)
    if kind == "evaluated":
        return (
            f"Measured: accuracy {event.accuracy:.0%} (was {event.previous_accuracy:.0%}), "
            f"reward margin {event.reward_margin:+.2f}. {event.reason}"
        )
    if kind == "saved":
        return f"Saved adapter {event.adapter_id}."
    if kind == "finished":
        if event.status == "stopped":
            return f"Stopped at step {event.step}; it can resume from there."
        return f"Finished in {format_duration(event.seconds)}."
    if kind == "failed":
        return f"Failed: {event.reason}" + (f" {event.hint}" if event.hint else "")
    return str(event)


def format_duration(seconds: float) -> str:
    """ "45 s", "4 min", "1 h 05 min"."""
    s = max(0, round(seconds or 0))
    if s < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def step_details(step: Step) -> str:
    """The figures under the progress bar: time left, speed, loss, reward margin."""
    parts = []
    if step.eta_s:
        parts.append(f"about {format_duration(step.eta_s)} left")
    if step.tokens_per_second:
        parts.append(f"{step.tokens_per_second:.1f} tokens/s")
    if step.loss is not None:
        parts.append(f"loss {step.loss:.4f}")
    if step.reward_margin is not None:
        parts.append(f"reward margin {step.reward_margin:+.3f}")
    return " · ".join(parts)


def result_html(ev: Evaluated, t: Theme) -> str:
    """The verdict and the figures of a measured adapter, against the one it would replace."""
    previous = f"adapter {ev.previous_adapter}" if ev.previous_adapter else "the base model"
    verdict_color = t.accent if ev.recommended else t.warning_text
    too_few = ev.examples < MIN_VERDICT_EXAMPLES
    verdict = ("Better" if ev.recommended
               else "Too few held-out ratings to compare with" if too_few
               else "Not better")
    return (
        f"<p><span style='color:{verdict_color}; font-weight:600'>{verdict}</span> than "
        f"{html.escape(previous)}, measured on {ev.examples} held-out example"
        f"{'s' if ev.examples != 1 else ''}.</p>"
        f"<table cellspacing='0' cellpadding='3'>"
        f"<tr><td>Preference accuracy</td><td align='right'><b>{ev.accuracy:.0%}</b></td>"
        f"<td style='color:{t.muted}'>&nbsp;was {ev.previous_accuracy:.0%}</td></tr>"
        f"<tr><td>Reward margin</td><td align='right'><b>{ev.reward_margin:+.2f}</b></td>"
        f"<td style='color:{t.muted}'>&nbsp;was {ev.previous_reward_margin:+.2f}</td></tr>"
        f"</table><p style='color:{t.muted}'>{html.escape(ev.reason)}</p>"
    )


def samples_html(samples: list[dict[str, str]], t: Theme) -> str:
    """The side-by-side answers, before (base model) and after (new adapter), as a table."""

    def cell(text: str) -> str:
        return html.escape(text or "").replace("\n", "<br>")

    rows = "".join(
        f"<tr><td>{cell(s.get('prompt', ''))}</td><td>{cell(s.get('base', ''))}</td>"
        f"<td>{cell(s.get('adapter', ''))}</td></tr>"
        for s in samples
    )
    head = f"style='color:{t.muted}; font-weight:600; border-bottom:1px solid {t.border}'"
    return (
        f"<table width='100%' cellspacing='0' cellpadding='5' "
        f"style='border-collapse:collapse; color:{t.text}'>"
        f"<tr><td width='30%' {head}>Prompt</td><td width='35%' {head}>Before (base model)"
        f"</td><td width='35%' {head}>After (new adapter)</td></tr>{rows}</table>"
    )


def adoption_question(ev: Evaluated | None) -> str:
    """Whether to use the new adapter, with how it measured."""
    headline, figures = "The new adapter is ready.", ""
    if ev is not None:
        previous = "the adapter in use" if ev.previous_adapter else "the base model"
        figures = (
            f" It measured {ev.accuracy:.0%} against {ev.previous_accuracy:.0%} for {previous}."
        )
        if ev.recommended:
            headline = "The new adapter is better."
        elif ev.examples < MIN_VERDICT_EXAMPLES:
            figures += f" ({ev.examples} held-out example{'' if ev.examples == 1 else 's'}: " \
                       "too few to be sure.)"
    return f"{headline}{figures} Use it in the chat?"


def needs_more_text(data: MethodData) -> str:
    """The core's own "Training needs N more …" sentence and its hint, "" when ready."""
    shortfall = data.shortfall()
    return str(shortfall) if shortfall is not None else ""


def describe_preset(preset: str, training: TrainingSettings, n_train: int, cuda: bool) -> str:
    """What a preset means here, with the Advanced values on top: e.g. "Quick (no CUDA GPU
    found): rank 8, learning rate 0.0002, about 9 steps, up to 256 tokens per example"."""
    from ghostdesk.core.training.run_config import planned_steps, preset_config

    cfg = preset_config(preset, n_train, cuda=cuda, overrides=training.overrides())
    steps = planned_steps(cfg, n_train)
    why = ""
    if preset == "auto":
        why = " (a CUDA GPU was found)" if cuda else " (no CUDA GPU found)"
    return (
        f"{cfg.preset.capitalize()}{why}: rank {cfg.lora_r}, learning rate "
        f"{cfg.learning_rate:g}, about {steps} step{'s' if steps != 1 else ''} for "
        f"{n_train} example{'s' if n_train != 1 else ''}, up to {cfg.max_length} tokens "
        f"per example"
    )
