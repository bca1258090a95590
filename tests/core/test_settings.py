"""Settings round-trip through a readable TOML file; bad values never stop the app."""

import tomllib

import pytest

from ghostdesk.core.errors import SettingsError, StorageError
from ghostdesk.core.paths import DataPaths, data_dir
from ghostdesk.core.settings import Settings, SettingsFile


def test_data_dir_follows_ghostdesk_home(ghostdesk_home):
    assert data_dir() == ghostdesk_home
    assert DataPaths.default().database.parent == ghostdesk_home


def test_defaults_when_no_file(tmp_path):
    settings = SettingsFile(tmp_path / "settings.toml").load()
    assert settings == Settings()
    assert settings.model.n_gpu_layers == "auto"
    assert "Ghost" in settings.persona.rendered_system_prompt()


def test_round_trip_is_human_readable(tmp_path):
    path = tmp_path / "settings.toml"
    settings = Settings()
    settings.sampling.temperature = 0.3
    settings.model.n_gpu_layers = 12
    settings.persona.name = "Mira"
    SettingsFile(path).save(settings)
    text = path.read_text(encoding="utf-8")
    assert "[sampling]" in text and "temperature = 0.3" in text
    assert tomllib.loads(text)["persona"]["name"] == "Mira"
    assert SettingsFile(path).load() == settings


def test_bad_values_fall_back_and_the_file_is_kept(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[sampling]\ntemperature = "hot"\ntop_p = 7.0\n[model]\nn_ctx = 8192\n'
                    'n_gpu_layers = "lots"\n', encoding="utf-8")
    file = SettingsFile(path)
    settings = file.load()
    assert settings.sampling.temperature == 0.8
    assert settings.sampling.top_p == 0.95
    assert settings.model.n_ctx == 8192, "good values are kept"
    assert settings.model.n_gpu_layers == "auto"
    assert len(file.problems) == 3
    assert any("sampling.top_p" in p and "0.95" in p for p in file.problems)
    assert list(tmp_path.glob("settings.toml.broken-*")), "the user's file is kept aside"


def test_unparseable_file_uses_defaults_and_keeps_a_copy(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("this is [not toml", encoding="utf-8")
    file = SettingsFile(path)
    assert file.load() == Settings()
    assert "could not be read" in file.problems[0]
    aside = list(tmp_path.glob("settings.toml.broken-*"))
    assert aside and aside[0].read_text() == "this is [not toml"


def test_validate_names_the_setting():
    settings = Settings()
    settings.sampling.max_tokens = 0
    with pytest.raises(SettingsError, match="sampling.max_tokens"):
        settings.validate()


def test_save_refuses_invalid_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "settings.toml"
    SettingsFile(path).save(Settings())
    before = path.read_text()
    bad = Settings()
    bad.model.n_ctx = 10
    with pytest.raises(SettingsError):
        SettingsFile(path).save(bad)
    assert path.read_text() == before


def test_unwritable_folder_is_a_storage_error(tmp_path, monkeypatch):
    import tempfile

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    with pytest.raises(StorageError, match="No space left"):
        SettingsFile(tmp_path / "settings.toml").save(Settings())


def test_training_choices_round_trip_and_bad_ones_fall_back(tmp_path):
    f = SettingsFile(tmp_path / "settings.toml")
    s = Settings()
    s.training.method, s.training.preset, s.training.lora_r = "dpo", "standard", 16
    f.save(s)
    again = f.load()
    assert (again.training.method, again.training.preset, again.training.lora_r) == (
        "dpo", "standard", 16)
    assert again.training.overrides() == {"lora_r": 16}

    (tmp_path / "settings.toml").write_text(
        '[training]\nmethod = "magic"\nlearning_rate = 0.5\nadopt = "auto"\n', encoding="utf-8")
    loaded = f.load()
    assert (loaded.training.method, loaded.training.learning_rate) == ("auto", 0.0)
    assert loaded.training.adopt == "auto"
    assert any("training.method" in p for p in f.problems)
    assert any("training.learning_rate" in p for p in f.problems)


def test_training_setting_out_of_range_is_named():
    s = Settings()
    s.training.max_length = 8
    with pytest.raises(SettingsError, match="training.max_length"):
        s.validate()
