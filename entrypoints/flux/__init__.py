"""Deepgram Flux: WebSocket /v2/listen, conversational speech to text in turns."""
