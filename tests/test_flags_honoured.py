"""Every budget flag changes the run or is refused in one line (issue 25, item 2): a heuristic defence takes
no epsilon/delta, laplace takes no delta, `exact` takes no epsilon, a grid sweeps no epsilon a defence ignores."""

from __future__ import annotations

import pytest

from fedsim.cli.app import main
from fedsim.errors import UserError
from fedsim.experiments.expansion import expand
from fedsim.experiments.grid import load_grid
from fedsim.registry import GRADIENT_DEFENSES, LABEL_DEFENSES

TRAIN = ["train", "--dataset", "diabetes", "--epochs", "1", "--quiet"]


@pytest.mark.parametrize("args, fragments", [
    (["--gradient-defense", "gaussian_noise", "--epsilon", "1"], ["'gaussian_noise' takes no epsilon", "dp_gradient"]),
    (["--gradient-defense", "max_norm", "--epsilon", "1"], ["'max_norm' takes no epsilon", "drop --epsilon"]),
    (["--gradient-defense", "max_norm", "--delta", "1e-5"], ["'max_norm' takes no delta", "top_dp_epsilon"]),
    (["--label-defense", "laplace", "--epsilon", "1", "--delta", "1e-5"], ["'laplace' takes no delta", "gaussian"]),
    (["--gradient-defense", "mid", "--epsilon", "1"], ["'mid' takes no epsilon"]),
])
def test_budget_a_defence_ignores_is_refused(capsys, tmp_path, args, fragments):
    code = main([*TRAIN, *args, "--transcript", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "t").exists()


def test_every_builtin_defence_declares_its_budget():
    """The declaration matches what the defence does: a defence that takes epsilon refuses to build without
    one or reports it; one that does not builds without it."""
    takes = {name for registry in (LABEL_DEFENSES, GRADIENT_DEFENSES) for name in registry.names()
             if registry.get(name).takes_epsilon}
    assert takes == {"gaussian", "laplace", "rr", "rr_on_bins", "rr_with_prior", "unbiased_opt", "dp_gradient",
                     "grad_perturb"}
    assert {n for n in GRADIENT_DEFENSES.names() if GRADIENT_DEFENSES.get(n).takes_delta} == {"dp_gradient"}
    assert {n for n in LABEL_DEFENSES.names() if LABEL_DEFENSES.get(n).takes_delta} == {"gaussian"}


def test_delta_with_top_model_dp_is_kept(capsys):
    code = main([*TRAIN, "--label-defense", "laplace", "--epsilon", "4", "--delta", "1e-5", "--defense-param",
                 "low=25", "--defense-param", "high=346", "--defense-param", "top_dp_epsilon=8", "--json"])
    assert code == 0, capsys.readouterr().err


def test_exact_auc_refuses_a_finite_epsilon(capsys):
    code = main(["auc", "--method", "exact", "--epsilon", "1", "--synthetic", "breast_cancer"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "method exact takes no --epsilon" in err and "hist" in err


def test_grid_refuses_epsilons_on_a_defence_without_epsilon(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('name = "t"\n[leakage]\ndatasets = ["diabetes"]\nattacks = ["mean"]\nseeds = [0]\n'
                    '[[leakage.defenses]]\ngradient = "gaussian_noise"\nepsilons = [1.0, 8.0]\n')
    with pytest.raises(UserError, match="'gaussian_noise' takes no epsilon") as info:
        expand(load_grid(path)[0])
    assert "\n" not in str(info.value)
