"""The shipped model catalogue: well-formed, one tier per GPU size, sensible choices."""

from __future__ import annotations

import pytest

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.models.catalogue import GIB, format_size, load_catalogue, parse_catalogue


def test_the_shipped_catalogue_loads_and_every_tier_offers_models():
    cat = load_catalogue()
    assert [t.id for t in cat.tiers] == ["cpu", "gpu-8gb", "gpu-12gb", "gpu-16gb", "gpu-24gb"]
    for tier in cat.tiers:
        assert cat.models_in(tier.id), tier.id
    for m in cat.models:
        assert m.filename.endswith(".gguf") and m.repo_id.count("/") == 1
        assert m.licence and m.size_bytes > 0
        assert m.filename in m.label or m.name in m.label


def test_the_24gb_tier_is_20_to_34b_q4_models_that_fit():
    cat = load_catalogue()
    for m in cat.models_in("gpu-24gb"):
        assert 20 <= m.params_billion <= 34 and m.quant == "Q4_K_M"
        assert m.size_bytes < 22 * GIB
    for m in cat.models_in("gpu-8gb"):
        assert 7 <= m.params_billion <= 14 and m.size_bytes < 6 * GIB


@pytest.mark.parametrize(("vram_gib", "tier"), [
    (0, "cpu"), (4, "cpu"), (6, "cpu"), (7.6, "gpu-8gb"), (11.6, "gpu-12gb"),
    (15.7, "gpu-16gb"), (23.6, "gpu-24gb"), (79, "gpu-24gb"),
])
def test_gpu_memory_picks_the_tier(vram_gib, tier):
    assert load_catalogue().tier_for_vram(int(vram_gib * GIB)).id == tier


def test_a_broken_catalogue_is_a_clear_error(tmp_path):
    bad = tmp_path / "catalogue.toml"
    bad.write_text("[[tiers]\n", encoding="utf-8")
    with pytest.raises(GhostDeskError, match="could not be read"):
        load_catalogue(bad)
    tiers = [{"id": "cpu", "title": "CPU", "min_vram_gib": 0}]
    model = {"id": "m", "tier": "cpu", "name": "M", "repo_id": "a/b", "filename": "m.gguf",
             "size_bytes": 1, "licence": "MIT"}
    assert parse_catalogue({"tiers": tiers, "models": [model]}).get("m").name == "M"
    for broken, why in [
        ({**model, "tier": "gpu"}, "unknown tier"),
        ({**model, "filename": "m.bin"}, "not a .gguf"),
        ({**model, "sha256": "XYZ"}, "sha256"),
        ({**model, "surprise": 1}, "bad entry"),
    ]:
        with pytest.raises(GhostDeskError, match=why):
            parse_catalogue({"tiers": tiers, "models": [broken]})
    with pytest.raises(GhostDeskError, match="duplicate"):
        parse_catalogue({"tiers": tiers, "models": [model, model]})


def test_sizes_read_like_a_file_manager():
    assert format_size(512) == "512 B"
    assert format_size(986_000_000) == "986 MB"
    assert format_size(19_900_000_000) == "19.9 GB"
