"""`ghostdesk memory ...` over the same MemoryService as the window."""

import json

from ghostdesk import app


def run(capsys, *argv):
    code = app.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def j(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_add_list_pin_edit_archive_restore_forget(capsys, tmp_path):
    first = j(capsys, "memory", "add", "Alex's sister Mei lives in Chengdu")
    assert [h["id"] for h in j(capsys, "memory", "search", "Chengdu")] == [first["id"]], \
        "search covers active memories too"
    assert first["kind"] == "manual" and not first["merged"]
    again = j(capsys, "memory", "add", "Alex's sister Mei lives in Chengdu")
    assert again["merged"] and again["id"] == first["id"], "near-duplicates merge"
    cid = first["id"]
    assert j(capsys, "memory", "pin", str(cid))["pinned"] is True
    assert j(capsys, "memory", "edit", str(cid), "Mei lives in Chengdu")["text"] == \
        "Mei lives in Chengdu"
    assert j(capsys, "memory", "pin", str(cid), "--off")["pinned"] is False
    assert j(capsys, "memory", "archive", str(cid))["archived"] is True
    assert j(capsys, "memory", "list") == []
    assert [c["id"] for c in j(capsys, "memory", "list", "--archived")] == [cid]
    hits = j(capsys, "memory", "search", "Chengdu")
    assert hits[0]["id"] == cid and hits[0]["text_match"]
    assert j(capsys, "memory", "restore", str(cid))["archived"] is False
    assert j(capsys, "memory", "forget", str(cid)) == {"forgotten": cid}
    assert j(capsys, "memory", "list", "--all") == []
    code, _, err = run(capsys, "memory", "forget", str(cid))
    assert code == 2 and "does not exist" in err


def test_import_rebuild_stats(capsys, tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("# About me\n\nI grew up by the sea.\n\nI play the cello on Sundays.\n",
                   encoding="utf-8")
    result = j(capsys, "memory", "import", str(doc))
    assert result["passages"] >= 1 and result["added"] >= 1
    assert j(capsys, "memory", "rebuild")["indexed"] == result["added"]
    stats = j(capsys, "memory", "stats")
    assert stats["active"] == result["added"] and stats["index_live"] == result["added"]


def test_bad_input_is_a_clear_message(capsys, tmp_path):
    code, _, err = run(capsys, "memory", "import", str(tmp_path / "missing.txt"))
    assert code == 2 and "missing.txt" in err and "Traceback" not in err
    code, _, err = run(capsys, "memory", "pin", "999")
    assert code == 2 and "999" in err
