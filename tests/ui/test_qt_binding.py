"""Guards against a Qt binding that leaks references to None: PySide6 6.12.0 on Python 3.11
takes one reference from None on every Qt call that returns nothing, and after ~50k calls
(a few long streamed replies) the process aborts with "deallocating None"."""

import subprocess
import sys

CHECK = """
import sys
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
before = sys.getrefcount(None)
for _ in range(100_000):
    label.setText("x")
print(sys.getrefcount(None) - before)
"""


def test_void_qt_calls_do_not_eat_references_to_none():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                            timeout=120, env={"QT_QPA_PLATFORM": "offscreen",
                                              "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-500:]
    assert abs(int(result.stdout.strip())) < 1000
