"""`python -m ghostdesk.core.training RUN.json`: run one training run, events on stdout."""

import sys

from ghostdesk.core.training.job.child import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
