"""First-run setup without Qt: what this computer can run, and what the user chose."""
