"""`python -m webhook` is the `bulwark` command."""

from webhook.cli import main

raise SystemExit(main())
