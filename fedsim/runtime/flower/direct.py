"""An in-process `Grid` that hands each message straight to a ClientApp: the protocol without an engine.

It exercises exactly the messages and the `context.state` persistence of a real run, in milliseconds, so
tests can cover K = 1..8 parties, faults and reply validation without starting Ray or a SuperLink.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from fedsim.runtime.flower.records import PARTITION_KEY

CLIENT_APP_RAISED = 5  # Flower's ErrorCode.CLIENT_APP_RAISED_EXCEPTION


class DirectGrid(Grid):
    """Nodes 1..K with partition-ids 0..K-1, each with its own `Context`; replies are ready on push."""

    def __init__(self, client_app: ClientApp, nodes: int) -> None:
        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 0, 0  # what Message() reads
        self.client_app = client_app
        self.contexts = {
            k + 1: Context(run_id=0, node_id=k + 1, node_config={PARTITION_KEY: k, "num-partitions": nodes},
                           state=RecordDict(), run_config={})
            for k in range(nodes)
        }
        self.replies: dict[str, Message] = {}

    def set_run(self, run) -> None:  # noqa: ANN001 - part of the abstract interface, unused here
        self._run = run

    @property
    def run(self):  # noqa: ANN201
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            try:
                reply = self.client_app(message, self.contexts[message.metadata.dst_node_id])
            except Exception as exc:  # noqa: BLE001 - reported to the ServerApp as an error reply, like Flower
                reply = Message(Error(CLIENT_APP_RAISED, f"{type(exc).__name__}: {exc}"), reply_to=message)
            self.replies[message.metadata.message_id] = reply
            ids.append(message.metadata.message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        # newest first: real replies arrive in any order, and the ServerApp must not rely on it
        return [self.replies.pop(i) for i in reversed(list(message_ids)) if i in self.replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))
