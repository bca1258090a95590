"""The HTTP side of downloads, in isolation: URLs and the checksum in an ETag."""

from __future__ import annotations

from ghostdesk.core.models.http_transfer import hf_resolve_url, sha256_from_etag

DIGEST = "0123456789abcdef" * 4


def test_an_etag_holding_a_sha256_gives_it_and_any_other_gives_nothing():
    assert sha256_from_etag(f'"{DIGEST.upper()}"') == DIGEST
    assert sha256_from_etag(f'W/"{DIGEST}"') == DIGEST
    assert sha256_from_etag('"5d41402abc4b2a76b9719d911017c592"') == ""  # an MD5
    assert sha256_from_etag("") == ""


def test_resolve_urls_quote_the_revision_and_the_file_name():
    url = hf_resolve_url("someone/Model", "a b.gguf", "refs/pr/1", endpoint="http://hub/")
    assert url == "http://hub/someone/Model/resolve/refs%2Fpr%2F1/a%20b.gguf"
