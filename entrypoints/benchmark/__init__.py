"""`voicepipe bench`: the figures a user needs to size a deployment, measured on their machine.

`hold_streams` is the measurement behind "real-time streams held"; a dev bench may call it
to compare a change: `asyncio.run(hold_streams("http://127.0.0.1:8000", 4, 25.0))`.
"""

from entrypoints.benchmark.streams import StreamLags, hold_streams

__all__ = ["StreamLags", "hold_streams"]
