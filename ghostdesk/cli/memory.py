"""`ghostdesk memory ...`: see, search, edit, pin, forget, archive, restore and import memories.

Same MemoryService as the window's Memory pane; every verb takes --json.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ghostdesk.cli.output import emit
from ghostdesk.core.errors import GhostDeskError

if TYPE_CHECKING:
    from ghostdesk.core.memory.crystal_record import CrystalRecord
    from ghostdesk.services import AppServices


def add_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    memory = verbs.add_parser("memory", parents=[common], help="the companion's memories")
    actions = memory.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, run, help_text: str, *, with_id: bool = False):
        parser = actions.add_parser(name, parents=[common], help=help_text)
        if with_id:
            parser.add_argument("id", type=int, help="memory id (see `ghostdesk memory list`)")
        parser.set_defaults(run=run)
        return parser

    listing = action("list", _cmd_list, "list memories (active by default)")
    listing.add_argument("--archived", action="store_true", help="list the archive instead")
    listing.add_argument("--all", action="store_true", help="active and archived")
    listing.add_argument("--limit", type=int, default=100)
    add = action("add", _cmd_add, "remember a text")
    add.add_argument("text")
    add.add_argument("--importance", type=float, default=0.6, help="0 to 1")
    search = action("search", _cmd_search, "search by words and by meaning (archive included)")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=20)
    edit = action("edit", _cmd_edit, "change a memory's text", with_id=True)
    edit.add_argument("text")
    pin = action("pin", _cmd_pin, "pin (never fades) or --off", with_id=True)
    pin.add_argument("--off", action="store_true", help="unpin")
    action("forget", _cmd_forget, "delete a memory for good", with_id=True)
    action("archive", _cmd_archive, "move to cold storage (not recalled)", with_id=True)
    action("restore", _cmd_restore, "bring back from the archive", with_id=True)
    imp = action("import", _cmd_import, "import a .txt or .md document as memories")
    imp.add_argument("path")
    action("rebuild", _cmd_rebuild, "rebuild the search index from the database")
    action("stats", _cmd_stats, "counts and index health")


def _memory(services: AppServices):
    memory = services.memory
    if memory is None:
        reason = next((n for n in services.notices if n.startswith("Memory")), "")
        raise GhostDeskError("Memory is turned off or unavailable.",
                             hint=reason or "Turn it on in settings.toml: [memory] enabled = true")
    return memory


def _crystal_json(c: CrystalRecord) -> dict[str, Any]:
    return {"id": c.id, "text": c.text, "kind": c.kind, "importance": round(c.importance, 3),
            "pinned": c.pinned, "archived": c.archived, "recall_count": c.recall_count,
            "created_at": c.created_at.isoformat(),
            "last_recalled_at": c.last_recalled_at.isoformat() if c.last_recalled_at else None,
            "source_message_ids": list(c.source_message_ids), "source": c.source}


def _line(c: CrystalRecord) -> str:
    flags = ("📌" if c.pinned else "") + (" [archived]" if c.archived else "")
    seen = f"{c.last_recalled_at:%Y-%m-%d}" if c.last_recalled_at else "never"
    return f"{c.id:>6}  imp {c.importance:.2f}  recalled {c.recall_count:>3}× (last {seen})  " \
           f"{c.text}{' ' + flags if flags else ''}"


def _cmd_list(args, services: AppServices, out: TextIO) -> int:
    archived = None if args.all else args.archived
    rows = _memory(services).list_crystals(archived=archived, limit=args.limit)
    text = "\n".join(_line(c) for c in rows) or "No memories yet."
    return emit(args, out, [_crystal_json(c) for c in rows], text)


def _cmd_add(args, services: AppServices, out: TextIO) -> int:
    absorbed = _memory(services).add_crystal(args.text, kind="manual",
                                             importance=args.importance)
    verb = "Merged into" if absorbed.merged else "Remembered as"
    return emit(args, out, {**_crystal_json(absorbed.crystal), "merged": absorbed.merged},
                f"{verb} memory {absorbed.crystal.id}.")


def _cmd_search(args, services: AppServices, out: TextIO) -> int:
    hits = _memory(services).search(args.query, limit=args.limit)
    lines = [f"{h.similarity:5.2f} {'T' if h.text_match else ' '} {_line(h.crystal)}"
             for h in hits]
    data = [{**_crystal_json(h.crystal), "similarity": round(h.similarity, 4),
             "text_match": h.text_match} for h in hits]
    return emit(args, out, data, "\n".join(lines) or "Nothing found.")


def _cmd_edit(args, services: AppServices, out: TextIO) -> int:
    c = _memory(services).edit(args.id, args.text)
    return emit(args, out, _crystal_json(c), f"Memory {c.id} now reads: {c.text}")


def _cmd_pin(args, services: AppServices, out: TextIO) -> int:
    c = _memory(services).pin(args.id, not args.off)
    state = "pinned" if c.pinned else "unpinned"
    return emit(args, out, _crystal_json(c), f"Memory {c.id} {state}.")


def _cmd_forget(args, services: AppServices, out: TextIO) -> int:
    if not _memory(services).forget(args.id):
        raise GhostDeskError(f"Memory {args.id} does not exist.")
    return emit(args, out, {"forgotten": args.id}, f"Memory {args.id} is forgotten for good.")


def _cmd_archive(args, services: AppServices, out: TextIO) -> int:
    c = _memory(services).archive(args.id)
    return emit(args, out, _crystal_json(c), f"Memory {c.id} moved to the archive.")


def _cmd_restore(args, services: AppServices, out: TextIO) -> int:
    c = _memory(services).restore(args.id)
    return emit(args, out, _crystal_json(c), f"Memory {c.id} is back.")


def _cmd_import(args, services: AppServices, out: TextIO) -> int:
    result = _memory(services).import_document(Path(args.path).expanduser())
    return emit(args, out, {"name": result.name, "passages": result.passages,
                            "added": result.added, "merged": result.merged},
                f"Imported {result.name}: {result.passages} passages, {result.added} new "
                f"memories, {result.merged} merged into existing ones.")


def _cmd_rebuild(args, services: AppServices, out: TextIO) -> int:
    count = _memory(services).rebuild_index()
    return emit(args, out, {"indexed": count}, f"Rebuilt the memory index: {count} memories.")


def _cmd_stats(args, services: AppServices, out: TextIO) -> int:
    s = _memory(services).stats()
    data = {"active": s.active, "archived": s.archived, "index_live": s.index_live,
            "index_tombstones": s.index_tombstones, "state_turns": s.state_turns,
            "embed_model": s.embed_model, "notices": s.notices}
    return emit(args, out, data, "\n".join(f"{k}: {v}" for k, v in data.items()))
