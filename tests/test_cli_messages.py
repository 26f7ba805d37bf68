"""Messages that say what is wrong and what to do, and grid controls (issue 25, items 5 and 6)."""

from __future__ import annotations

import pytest

from fedsim.cli import bench as bench_cli
from fedsim.cli.app import main
from fedsim.config import TrainConfig, validated
from fedsim.errors import UserError

ROWS = "name,x,y\na,1.3,0.5\nb,2.2,1.5\nc,3.9,2.25\nd,4.1,3.1\ne,5.7,4.2\nf,1,1\ng,3,3\nh,2.5,6\n"


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (code, out, err)
    return err


@pytest.mark.parametrize("target, task, fragments", [
    ("name", None, ["different value on every row", "--target"]),
    ("y", "binary", ["continuous values", "--task regression"]),
])
def test_target_messages_say_what_to_do(capsys, tmp_path, target, task, fragments):
    data = tmp_path / "d.csv"
    data.write_text(ROWS)
    err = one_line_error(capsys, ["train", "--data", str(data), "--target", target, *(["--task", task] if task
                                                                                        else []), "--quiet"])
    for fragment in fragments:
        assert fragment in err, err
    assert "multiclass" not in err or task is None


@pytest.mark.parametrize("task", [None, "regression"])
def test_a_target_with_one_value_is_refused(capsys, tmp_path, task):
    data = tmp_path / "d.csv"
    data.write_text("".join(["x,z,y\n", *(f"{i * 0.5},{i % 3},7\n" for i in range(40))]))
    err = one_line_error(capsys, ["train", "--data", str(data), "--target", "y", "--quiet",
                                  *(["--task", task] if task else [])])
    assert "same value (7) in every row" in err and "--target" in err, err
    assert not any(tmp_path.glob("*.json"))


def test_value_is_shown_once_and_never_as_a_numpy_repr():
    np = pytest.importorskip("numpy")
    with pytest.raises(UserError) as info:
        validated(TrainConfig, lr=-1.0)
    assert str(info.value).count("got") == 1, info.value
    with pytest.raises(UserError) as info:
        validated(TrainConfig, parties=np.int64(0))
    assert "np.int64" not in str(info.value) and "(got 0)" in str(info.value), info.value


def test_help_example_of_defense_params_works_as_written(capsys):
    """The help's own example, typed as the help now writes it, trains."""
    help_text = TrainConfig.model_fields["defense_params"].description or ""
    assert "--defense-param low=0 --defense-param high=400" in help_text
    code = main(["train", "--label-defense", "laplace", "--epsilon", "4", "--defense-param", "low=0",
                 "--defense-param", "high=400", "--epochs", "1", "--quiet", "--json"])
    assert code == 0, capsys.readouterr().err


def test_one_feature_party_is_singular(capsys):
    assert main(["train", "--parties", "1", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 feature party," in out and "1 feature parties" not in out


@pytest.mark.parametrize("value", ["0", "-1", "two", "2x"])
def test_workers_is_a_count_or_auto(capsys, tmp_path, value):
    err = one_line_error(capsys, ["bench", "quick", "--out", str(tmp_path / "o"), f"--workers={value}"])
    assert "--workers must be an integer >= 1 or auto" in err
    assert not (tmp_path / "o").exists()


def test_workers_auto_and_counts():
    assert bench_cli.parse_workers("auto") == bench_cli.parse_workers(None) == bench_cli.default_workers()
    assert bench_cli.parse_workers("3") == 3


def test_ctrl_c_says_how_to_resume(capsys, tmp_path, monkeypatch):
    import fedsim.experiments.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_grid", interrupted)
    code = main(["bench", "quick", "--out", str(tmp_path / "o"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 130  # the shell's code for ctrl-C
    assert f"run `fedsim bench quick --out {tmp_path / 'o'}` to resume" in err, err
