"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(ValueError):
    """A bad input (flag, file, config, name) that the user can fix; the message names it and what is allowed."""


def check(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)
