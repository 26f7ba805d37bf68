"""The `fedsim` command line (contract: shared/docs/CLI.md)."""
