"""Runtimes drive the same party objects through the same schedule: `local` (in-process) and `flower`."""
