"""Errors the CLI prints as one line: a user's mistake (exit 2) or a failed party (exit 1); and fedsim's own
warnings, which it prints as one line too."""


class UserError(ValueError):
    """A bad input (flag, file, config, name) that the user can fix; the message names it and what is allowed."""


class NotApplicable(UserError):
    """An attack that cannot model the run's defence (e.g. `bayes` under a heuristic gradient defence): a correct
    refusal, not a failure. Alone it is a user's mistake (one line, exit 2); a grid records that attack of the
    cell as not applicable, with this message, and does not retry it."""


class PartyError(RuntimeError):
    """Another party of the federation crashed, timed out or sent an invalid message: not the user's input.
    The message names the party (and the step); the CLI exits with code 1."""


class FedsimWarning(UserWarning):
    """Something the user should know that did not stop the run (e.g. missing feature values imputed)."""


def check(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
