"""Entry point of the frozen (PyInstaller) GhostDesk on Windows and macOS.

A frozen app has no `python` to run `python -m ghostdesk.core.llm.probe` (the child process
that test-loads unknown model files), so the app's own executable stands in for it: started
as `GhostDesk -m MODULE ARGS...`, it runs that module like the interpreter would. On Windows
the probe is sent to the console build (ghostdesk-cli.exe) next to the windowed one, because
a windowed executable has no standard output to report through.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import sys


def _use_console_twin_for_children() -> None:
    if sys.platform != "win32":
        return
    exe = os.path.abspath(sys.executable)
    twin = os.path.join(os.path.dirname(exe), "ghostdesk-cli.exe")
    if os.path.basename(exe).lower() != "ghostdesk-cli.exe" and os.path.isfile(twin):
        sys.executable = twin  # children (`sys.executable -m ...`) start the console build


def main() -> int:
    multiprocessing.freeze_support()
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    _use_console_twin_for_children()
    from ghostdesk.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
