"""Memory: crystals in SQLite, an hnswlib index over them, the companion's state vector,
resonance recall, forgetting to an archive, and crystallization by the model.

`MemoryService` (service.py) is the entry point; docs/memory.md maps every module. Importing
this package loads neither torch nor hnswlib: both are imported when first needed.
"""

from ghostdesk.core.memory.crystal_record import CrystalRecord, StoredRecall
from ghostdesk.core.memory.crystallization import Crystallization, TurnMemory
from ghostdesk.core.memory.embedder import Embedder, EmbedderError, SentenceEmbedder
from ghostdesk.core.memory.index_keeper import Consistency
from ghostdesk.core.memory.intake import Absorbed, DocumentImport
from ghostdesk.core.memory.recall import RecalledCrystal, RecallResult
from ghostdesk.core.memory.search import SearchHit
from ghostdesk.core.memory.service import MEMORY_FOLDER, MemoryService, MemoryStats
from ghostdesk.core.memory.settings import MemorySettings

__all__ = [
    "MEMORY_FOLDER",
    "Absorbed",
    "Consistency",
    "CrystalRecord",
    "Crystallization",
    "DocumentImport",
    "Embedder",
    "EmbedderError",
    "MemoryService",
    "MemorySettings",
    "MemoryStats",
    "RecallResult",
    "RecalledCrystal",
    "SearchHit",
    "SentenceEmbedder",
    "StoredRecall",
    "TurnMemory",
]
