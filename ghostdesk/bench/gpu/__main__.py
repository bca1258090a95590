"""`python -m ghostdesk.bench.gpu`: the GPU benchmark's command line."""

import sys

from ghostdesk.bench.gpu.command import main

sys.exit(main())
