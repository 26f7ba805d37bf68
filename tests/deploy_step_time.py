"""Per-step time of one `flwr run` over a plaintext and then a TLS + SuperNode-authentication loopback deployment
(docs/deployment.md, "Per-step time"). Not a test: run it as `python tests/deploy_step_time.py OUT_DIR`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flower_deployment import CONNECTION, Secure, deployment, flower_env, flwr_run

from fedsim.deploy.credentials import generate

SETTINGS = "epochs=1 batch-size=128 timeout=300.0"


def main(out: Path) -> None:
    for name in ("plaintext", "tls_auth"):
        folder = out / name
        folder.mkdir(parents=True)
        secure = Secure(generate(folder / "credentials", 2)[0].parent, (0, 1)) if name == "tls_auth" else None
        with flower_env(folder) as env, deployment(env, 2, folder, secure):
            flwr_run(env, CONNECTION, f"{SETTINGS} result='{folder / 'result.json'}'", timeout=1800)
        flower = json.loads((folder / "result.json").read_text())["flower"]
        print(name, SETTINGS, f"step median {flower['step_ms_median'] / 1000:.1f} s, "
                              f"max {flower['step_ms_max'] / 1000:.1f} s", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
