"""One file per schema revision; each must upgrade every earlier released schema."""
