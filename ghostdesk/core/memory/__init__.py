"""Memory: crystals in SQLite, an hnswlib index over them, the companion's state vector,
resonance recall, forgetting to an archive, and crystallization by the model.

`MemoryService` is the entry point; see docs/memory.md. Importing this package loads neither
torch nor hnswlib: both are imported when first needed.
"""

from ghostdesk.core.memory.crystals import CrystalRecord, StoredRecall
from ghostdesk.core.memory.embedder import (
    Embedder,
    EmbedderError,
    HashingEmbedder,
    SentenceEmbedder,
)
from ghostdesk.core.memory.recall import RecalledCrystal, RecallResult
from ghostdesk.core.memory.service import (
    MEMORY_FOLDER,
    Absorbed,
    Consistency,
    Crystallization,
    DocumentImport,
    MemoryService,
    MemorySettings,
    SearchHit,
    TurnMemory,
)

__all__ = [
    "MEMORY_FOLDER",
    "Absorbed",
    "Consistency",
    "CrystalRecord",
    "Crystallization",
    "DocumentImport",
    "Embedder",
    "EmbedderError",
    "HashingEmbedder",
    "MemoryService",
    "MemorySettings",
    "RecallResult",
    "RecalledCrystal",
    "SearchHit",
    "SentenceEmbedder",
    "StoredRecall",
    "TurnMemory",
]
