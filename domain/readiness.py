"""Readiness: may this instance take new work? A pure verdict over its queues and its state.

A load balancer routes new requests only to ready instances. Not ready is not unhealthy: the
instance keeps serving what it already has (open sessions, queued jobs) and becomes ready
again once its queues drain below the mark.
"""

from __future__ import annotations

import msgspec


class QueueLoad(msgspec.Struct, frozen=True):
    """One bounded model queue: jobs waiting or running, and the most it admits."""

    name: str
    queued: int
    max_queue: int

    @property
    def fraction(self) -> float:
        return self.queued / self.max_queue if self.max_queue > 0 else 0.0


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    reasons: tuple[str, ...] = ()


def readiness(queues: list[QueueLoad], *, saturated_at: float, draining: bool) -> Readiness:
    """Not ready while draining, or while any queue is at `saturated_at` (0-1] of its bound.

    The mark sits below the bound on purpose: the balancer's next probe comes seconds later,
    and the work already routed here until then must still fit in the queue.
    """
    reasons: list[str] = []
    if draining:
        reasons.append("draining: the instance is shutting down")
    for queue in queues:
        if queue.max_queue > 0 and queue.queued >= max(1, saturated_at * queue.max_queue):
            reasons.append(f"{queue.name} queue saturated: {queue.queued}/{queue.max_queue}")
    return Readiness(ready=not reasons, reasons=tuple(reasons))
