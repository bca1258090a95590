"""How memory behaves: all its settings in one dataclass, checked by `validate()`.

docs/memory.md explains each default."""

from __future__ import annotations

from dataclasses import dataclass

from ghostdesk.core.errors import SettingsError
from ghostdesk.core.memory.recall import RecallParams
from ghostdesk.core.memory.state import DEFAULT_ALPHA, DEFAULT_BETA


@dataclass
class MemorySettings:
    """How memory behaves; docs/memory.md explains each default."""

    alpha: float = DEFAULT_ALPHA
    """State decay per turn: S_t = normalize(α·S_{t-1} + (1-α)·e_t)."""
    beta: float = DEFAULT_BETA
    """Weight of the message in the recall query: q = normalize(β·e_msg + (1-β)·S_t)."""
    top_k: int = 5
    threshold: float = 0.30
    """Cosine similarity a crystal needs to be recalled (tuned for all-MiniLM-L6-v2)."""
    token_budget: int = 300
    """Most tokens the "Things you remember" block may take in the prompt."""
    importance_weight: float = 0.10
    recency_weight: float = 0.05
    recency_half_life_days: float = 30.0
    candidates: int = 32
    """Nearest neighbours fetched from the index and re-ranked."""
    merge_threshold: float = 0.92
    """A new crystal this similar to an existing one is merged into it."""
    crystallize_every: int = 6
    """Turns of a conversation between crystallizations."""
    crystallize_max_tokens: int = 120
    max_facts: int = 8
    archive_after_days: float = 60.0
    manual_importance: float = 0.8
    document_importance: float = 0.4
    skip_recent_messages: int = 6
    """Crystals made only from this conversation's last N messages are not recalled: those
    words are still in the prompt."""
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 64
    save_interval_s: float = 10.0
    """The index is written at most this often after changes (and always on close and after
    "forget"); a crash in between costs a rebuild at the next start, never a memory."""

    def validate(self) -> None:
        """Raise SettingsError naming the first value out of range."""
        checks = [
            (0.0 <= self.alpha < 1.0, "alpha", "0.0 up to (not including) 1.0"),
            (0.0 < self.beta <= 1.0, "beta", "above 0.0 up to 1.0"),
            (1 <= self.top_k <= 50, "top_k", "1 to 50"),
            (-1.0 <= self.threshold <= 1.0, "threshold", "-1.0 to 1.0"),
            (0 <= self.token_budget <= 100_000, "token_budget", "0 to 100000"),
            (self.candidates >= self.top_k, "candidates", "at least top_k"),
            (0.5 <= self.merge_threshold <= 1.0, "merge_threshold", "0.5 to 1.0"),
            (self.crystallize_every >= 1, "crystallize_every", "1 or more turns"),
            (self.archive_after_days > 0, "archive_after_days", "more than 0 days"),
            (4 <= self.hnsw_m <= 64, "hnsw_m", "4 to 64"),
            (self.hnsw_ef_construction >= self.hnsw_m, "hnsw_ef_construction", "at least M"),
            (1 <= self.hnsw_ef_search <= 10_000, "hnsw_ef_search", "1 to 10000"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise SettingsError(f"Setting memory.{name} is out of range.",
                                    hint=f"Allowed: {allowed}.")

    def recall_params(self) -> RecallParams:
        return RecallParams(
            top_k=self.top_k, threshold=self.threshold,
            importance_weight=self.importance_weight, recency_weight=self.recency_weight,
            recency_half_life_days=self.recency_half_life_days,
            token_budget=self.token_budget)
