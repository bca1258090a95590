"""The Qt desktop window: widgets, background workers and the theme. The core never imports it."""
