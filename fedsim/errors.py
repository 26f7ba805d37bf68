"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(ValueError):
    """A bad input (flag, file, config, name) that the user can fix; the message names it and what is allowed."""


def check(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
