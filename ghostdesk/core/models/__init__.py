"""Models GhostDesk can offer to download: the curated catalogue and the downloader."""
