"""The service as built at start-up: what the entrypoints reach for, and its life (start,
drain, stop)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.otel_telemetry import Telemetry
from application.access import Access
from application.admission import Admission
from application.catalog import Catalog
from application.connections import Connections
from application.conversation_session import Conversations
from application.fleet_stats import FleetStats
from application.health import Health
from application.listening_session import StartListening
from application.ports import AudioCache, Clock, EventLog, Transcriber, VoiceActivityDetector
from application.replying import Responding
from application.shared_breakers import SharedBreakers
from application.speaking import Speaking
from application.speech_pipeline import SpeechPipeline
from application.stats import StatsProjector
from application.stream_speech import StreamSpeech
from application.synthesize_speech import SynthesizeSpeech
from application.transcribe_audio import TranscribeAudio
from application.transcribing import Transcribing
from entrypoints.settings import Settings

Hook = Callable[[], Awaitable[None]]


log = logging.getLogger(__name__)


@dataclass
class Container:
    """What the entrypoints need, built once at start-up."""

    settings: Settings
    speech: SpeechPipeline
    synthesize: SynthesizeSpeech
    transcribe: TranscribeAudio
    stream_speech: StreamSpeech
    speaking: Speaking
    transcribing: Transcribing
    listen: StartListening
    responding: Responding
    conversations: Conversations
    admission: Admission
    health: Health
    catalog: Catalog
    voice_activity: VoiceActivityDetector
    projector: StatsProjector
    telemetry: Telemetry
    access: Access
    connections: Connections
    clock: Clock
    transcriber: Transcriber
    cache: AudioCache
    event_log: EventLog  # as stored, without the telemetry observers
    started_at: float = field(default_factory=time.monotonic)
    warnings: list[str] = field(default_factory=list)
    shared_breakers: SharedBreakers | None = None
    fleet_stats: FleetStats | None = None  # one projection for every instance (Redis log)
    draining: bool = False  # shutting down: not ready for new work (GET /ready)
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    on_drain: list[Hook] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Connect to shared stores and start following the event log (in the app's loop)."""
        self.draining = self.connections.closing = False  # a server started (again) serves
        for hook in self.on_start:
            await hook()
        following = self.fleet_stats.run() if self.fleet_stats else self.projector.run()
        self._tasks.append(asyncio.get_running_loop().create_task(following))
        if self.shared_breakers is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self.shared_breakers.run()))

    async def drain(self, seconds: float) -> None:
        """Shutting down: no new work (GET /ready says so, listeners close), and every open
        connection finishes what is in flight and says its last words."""
        self.draining = True
        for hook in self.on_drain:
            await hook()
        await self.connections.drain(seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a task that will not end must not hold up the exit
            _, stuck = await asyncio.wait(self._tasks, timeout=5.0)
            for task in stuck:
                log.error("background task did not stop: %r %s", task, task.get_stack(limit=8))
        self._tasks.clear()
        for hook in reversed(self.on_stop):
            await hook()
        await asyncio.to_thread(self.telemetry.shutdown)
