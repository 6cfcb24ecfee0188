"""python -m algotcha."""

from algotcha import cli

raise SystemExit(cli.main())
