"""What every defence shares: a parameter schema with one-line errors, the task check, claims from a ledger."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from fedsim.errors import check
from fedsim.params import NoParams, PluginParams, validate_params
from fedsim.privacy.claims import PrivacyClaim
from fedsim.privacy.ledger import PrivacyLedger

NO_GUARANTEE = "no formal guarantee"
P = TypeVar("P", bound=PluginParams)


class Defense:
    """Mixin of both hook kinds: `tasks` it applies to, its parameter schema `Params` (`fedsim.params`),
    `params`, the names it accepts (derived from `Params`; `resolve_defenses` routes `--defense-param` by them),
    and `takes_epsilon` / `takes_delta`, whether it uses the run's epsilon / delta."""

    name: ClassVar[str] = "none"
    summary: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("regression", "binary")
    Params: ClassVar[type[PluginParams]] = NoParams
    params: ClassVar[tuple[str, ...]] = ()
    # whether --epsilon / --delta mean something to it: the config refuses them otherwise (TrainConfig), so a
    # heuristic never looks private and two grid cells never differ only in an ignored epsilon
    takes_epsilon: ClassVar[bool] = False
    takes_delta: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.params = tuple(cls.Params.model_fields)

    @classmethod
    def check_task(cls, task: str) -> None:
        check(task in cls.tasks,
              f"defence {cls.name!r} applies to {' or '.join(cls.tasks)} tasks only, not {task!r}")

    @classmethod
    def read_params(cls, params: dict[str, Any]) -> Any:
        """The values checked against `Params` (typed, defaults filled in), or one-line `UserError`."""
        return validate_params(cls.Params, params, f"defence {cls.name!r}")


def heuristic_claim(name: str, what: str, **details: Any) -> PrivacyClaim:
    """The claim of a defence without a DP bound: epsilon None and the words 'no formal guarantee'."""
    return PrivacyClaim(name, None, None, f"{NO_GUARANTEE}: {what}", dict(details))


def require_events(name: str, ledger: PrivacyLedger) -> None:
    """A formal claim exists once its mechanism has run; an empty ledger must never read as 0-DP."""
    if not ledger.events:  # a programming error, not a user's
        raise RuntimeError(f"{name}: its privacy claim exists once the mechanism has run (apply / prepare)")


def ledger_claim(name: str, ledger: PrivacyLedger, delta: float | None, sentence: str,
                 epsilon: float | None = None, **details: Any) -> PrivacyClaim:
    """A formal claim whose epsilon is the ledger's total (pure events: delta 0), unless a tighter exact
    analysis gives `epsilon` (the caller's docstring proves it; the ledger's numbers stay in the details)."""
    require_events(name, ledger)
    epsilon = ledger.epsilon(delta) if epsilon is None else epsilon
    return PrivacyClaim(name, epsilon, 0.0 if ledger.pure else delta, sentence,
                        {**details, "ledger": ledger.summary(delta)})
