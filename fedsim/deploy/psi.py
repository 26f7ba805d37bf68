"""Private id alignment: ECDH private set intersection (OpenMined's `openmined.psi`, installed apart:
`pip install --no-deps openmined.psi==2.0.6`).

The label party plays the PSI *client*: it blinds its ids with a fresh secret key and sends one request to
every feature party. Each feature party plays the PSI *server*: it blinds the request again and sends back
its own ids, blinded with its own fresh key, in a setup message. Only the label party learns the
intersection (as positions in its own id list); a feature party learns the number of the label party's ids
and nothing else. No id is ever sent in the clear here; the label party then sends each party the ids of
the intersection it must train on (the train/test split), and no other.

Ids are compared as strings (`str(id)`), so 7 and "7" are the same id on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedsim.errors import UserError

FALSE_POSITIVE_RATE = 1e-9  # for the raw (uncompressed) setup message: exact up to the hash's collisions


def _psi() -> Any:
    try:
        import private_set_intersection.python as psi
    except ImportError:
        raise UserError("private id alignment needs the PSI library: "
                        "pip install --no-deps openmined.psi==2.0.6") from None
    return psi


@dataclass
class PsiRequest:
    """The label party's half of a PSI run: the blinded request to send, and the key to read the answers."""

    request: bytes
    size: int
    _client: Any

    def intersection(self, setup: bytes, response: bytes) -> np.ndarray:
        """Sorted positions (into the label party's ids) of the ids the answering party also holds."""
        psi = _psi()
        server_setup, reply = psi.ServerSetup(), psi.Response()
        try:
            server_setup.ParseFromString(setup)
            reply.ParseFromString(response)
            found = self._client.GetIntersection(server_setup, reply)
        except Exception as exc:  # the library raises RuntimeError or protobuf's DecodeError on a bad message
            raise ValueError(f"invalid PSI answer: {exc}") from None
        return np.sort(np.asarray(found, dtype=np.int64))


def psi_request(ids: Sequence[Any]) -> PsiRequest:
    """Blind the label party's ids under a fresh key (one request serves every feature party)."""
    psi = _psi()
    client = psi.client.CreateWithNewKey(True)  # reveal_intersection: the label party learns which ids
    items = [str(i) for i in ids]
    return PsiRequest(client.CreateRequest(items).SerializeToString(), len(items), client)


def psi_answer(request: bytes, request_size: int, ids: Sequence[Any]) -> tuple[bytes, bytes]:
    """A feature party's answer (setup, response) to the label party's request, under its own fresh key."""
    psi = _psi()
    server = psi.server.CreateWithNewKey(True)
    parsed = psi.Request()
    try:
        parsed.ParseFromString(request)
    except Exception as exc:
        raise ValueError(f"invalid PSI request: {exc}") from None
    items = [str(i) for i in ids]
    setup = server.CreateSetupMessage(FALSE_POSITIVE_RATE, request_size, items, psi.DataStructure.RAW)
    return setup.SerializeToString(), server.ProcessRequest(parsed).SerializeToString()
