"""The curated catalogue of GGUF chat models (catalogue.toml), grouped by GPU memory tier.

The order of models inside a tier is the order of preference: the first one that fits the
machine is the one GhostDesk recommends.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import GhostDeskError

GIB = 1024**3
CATALOGUE_FILE = "catalogue.toml"
DEFAULT_REVISION = "main"


@dataclass(frozen=True)
class Tier:
    id: str
    title: str
    min_vram_gib: float
    """Smallest total GPU memory (GiB) this tier's models are meant for; 0 = the processor."""
    description: str = ""


@dataclass(frozen=True)
class CatalogueModel:
    id: str
    tier: str
    name: str
    repo_id: str
    filename: str
    size_bytes: int
    """Approximate; the download asks the server for the exact size."""
    licence: str
    params_billion: float = 0.0
    quant: str = ""
    revision: str = DEFAULT_REVISION
    sha256: str = ""
    """Expected SHA-256 (lower-case hex); empty = use the one the server publishes."""
    licence_url: str = ""
    min_ram_gib: float = 0.0
    """For processor-only models: the memory the machine needs in total."""
    notes: str = ""

    @property
    def label(self) -> str:
        """One line for a list: name, quantization, size, licence."""
        return f"{self.name} · {self.quant} · ≈{format_size(self.size_bytes)} · {self.licence}"

    @property
    def page_url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


@dataclass(frozen=True)
class Catalogue:
    tiers: tuple[Tier, ...]
    models: tuple[CatalogueModel, ...]

    def tier(self, tier_id: str) -> Tier:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        raise KeyError(tier_id)

    def get(self, model_id: str) -> CatalogueModel:
        for model in self.models:
            if model.id == model_id:
                return model
        raise KeyError(model_id)

    def models_in(self, tier_id: str) -> list[CatalogueModel]:
        return [m for m in self.models if m.tier == tier_id]

    def cpu_tier(self) -> Tier:
        return min(self.tiers, key=lambda t: t.min_vram_gib)

    def tier_for_vram(self, total_vram_bytes: int) -> Tier:
        """The largest GPU tier whose minimum fits `total_vram_bytes`; the processor tier when
        no GPU tier does."""
        gib = total_vram_bytes / GIB
        fitting = [t for t in self.tiers if 0 < t.min_vram_gib <= gib]
        return max(fitting, key=lambda t: t.min_vram_gib) if fitting else self.cpu_tier()


def format_size(n_bytes: float) -> str:
    """Decimal units, as model repositories and file managers show them."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            break
        value /= 1000
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read the catalogue shipped with GhostDesk (or `path`); a broken file is a clear error."""
    try:
        if path is None:
            text = resources.files(__package__).joinpath(CATALOGUE_FILE).read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise GhostDeskError(
            f"The model catalogue could not be read: {err}",
            hint="Reinstall GhostDesk, or choose a .gguf file yourself.",
        ) from err
    return parse_catalogue(raw)


def parse_catalogue(raw: dict[str, Any]) -> Catalogue:
    try:
        tiers = tuple(Tier(**t) for t in raw.get("tiers", []))
        models = tuple(CatalogueModel(**m) for m in raw.get("models", []))
    except TypeError as err:  # a missing or unknown key
        raise GhostDeskError(f"The model catalogue has a bad entry: {err}") from err
    tier_ids = {t.id for t in tiers}
    if not tiers or len(tier_ids) != len(tiers):
        raise GhostDeskError("The model catalogue must list tiers with unique ids.")
    seen: set[str] = set()
    for m in models:
        problem = ""
        if m.id in seen:
            problem = "a duplicate id"
        elif m.tier not in tier_ids:
            problem = f"an unknown tier {m.tier!r}"
        elif "/" not in m.repo_id or not m.filename.endswith(".gguf") or "/" in m.filename:
            problem = "a repo_id without owner/name or a file name that is not a .gguf"
        elif m.size_bytes <= 0:
            problem = "no size"
        elif m.sha256 and (len(m.sha256) != 64 or m.sha256.strip("0123456789abcdef")):
            problem = "a sha256 that is not 64 lower-case hex digits"
        if problem:
            raise GhostDeskError(f"The model catalogue entry {m.id!r} has {problem}.")
        seen.add(m.id)
    return Catalogue(tiers, models)
