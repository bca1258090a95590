"""GhostDesk's headless core: plain Python, never imports Qt."""
