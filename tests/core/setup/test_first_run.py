"""The first-run marker and how a wizard choice becomes settings."""

from __future__ import annotations

import json

from ghostdesk.core.paths import DataPaths
from ghostdesk.core.settings import Settings, SettingsFile
from ghostdesk.core.setup.first_run import (
    SetupChoice,
    apply_setup_choice,
    first_run_needed,
    mark_first_run_done,
    marker_path,
    models_dir,
)


def test_a_new_data_folder_needs_the_wizard_until_it_ran(tmp_path):
    paths = DataPaths(tmp_path / "home").ensure()
    assert first_run_needed(paths)
    mark_first_run_done(paths, "skipped")
    assert not first_run_needed(paths)
    assert json.loads(marker_path(paths).read_text())["outcome"] == "skipped"
    assert models_dir(paths) == paths.root / "models"


def test_an_existing_user_with_settings_is_not_greeted_as_new(tmp_path):
    paths = DataPaths(tmp_path / "home").ensure()
    SettingsFile(paths.settings).save(Settings())
    assert not first_run_needed(paths)


def test_a_choice_changes_only_what_was_chosen():
    base = Settings()
    base.model.path = "/models/old.gguf"
    same = apply_setup_choice(base, SetupChoice())
    assert same.to_dict() == base.to_dict() and same is not base
    new = apply_setup_choice(base, SetupChoice(model_path="", persona_name="  Mira ",
                                               system_prompt="You are {name}."))
    assert new.model.path == "" and new.persona.name == "Mira"
    assert new.persona.system_prompt == "You are {name}."
    assert base.model.path == "/models/old.gguf"
    blank = apply_setup_choice(base, SetupChoice(persona_name="   ", system_prompt=""))
    assert blank.persona.name == base.persona.name
    assert blank.persona.system_prompt == base.persona.system_prompt
