"""`python -m ghostdesk` runs the same entry point as the `ghostdesk` command."""

from ghostdesk.app import main

raise SystemExit(main())
