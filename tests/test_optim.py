"""fedsim.optim.Adam: the same steps as torch.optim.Adam, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import torch

from fedsim.optim import Adam


def test_steps_are_bit_identical_to_torch_adam() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    twin = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    twin.load_state_dict(model.state_dict())
    extra = torch.zeros(3, requires_grad=True)  # a parameter that gets no gradient in some steps
    twin_extra = extra.detach().clone().requires_grad_(True)
    ours = Adam([*model.parameters(), extra], lr=0.01, weight_decay=0.01)
    theirs = torch.optim.Adam([*twin.parameters(), twin_extra], lr=0.01, weight_decay=0.01)
    x, y = torch.randn(64, 5), torch.randn(64, 1)
    for step in range(30):
        for net, bonus, optimizer in ((model, extra, ours), (twin, twin_extra, theirs)):
            loss = ((net(x) - y) ** 2).mean() + (bonus.sum() ** 2 if step % 3 == 0 else 0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for a, b in zip([*model.parameters(), extra], [*twin.parameters(), twin_extra], strict=True):
        assert torch.equal(a, b)


def test_no_dynamo_import() -> None:
    code = ("import sys, torch; from fedsim.optim import Adam; p = torch.zeros(2, requires_grad=True); "
            "o = Adam([p]); (p ** 2).sum().backward(); o.step(); print('torch._dynamo' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
