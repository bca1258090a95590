"""The plain data types: sampling parameters are the sampling settings, one definition."""

from __future__ import annotations

import dataclasses

from ghostdesk.core.llm.types import SamplingParams
from ghostdesk.core.settings import SamplingSettings


def test_sampling_params_have_exactly_the_sampling_settings_fields_and_defaults():
    assert dataclasses.asdict(SamplingParams()) == dataclasses.asdict(SamplingSettings())
    assert [f.name for f in dataclasses.fields(SamplingParams)] == [
        "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed"]


def test_a_reply_gets_a_copy_of_the_settings():
    settings = SamplingSettings(temperature=0.3, seed=7)
    params = SamplingParams(**vars(settings))
    settings.temperature = 1.0
    assert params.temperature == 0.3 and params.to_dict()["seed"] == 7
    assert SamplingParams.greedy(5).to_dict() == {
        "temperature": 0.0, "top_p": 1.0, "top_k": 1, "min_p": 0.0, "repeat_penalty": 1.0,
        "max_tokens": 5, "seed": 0}
