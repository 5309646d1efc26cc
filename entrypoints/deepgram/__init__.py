"""Deepgram's API: POST /v1/listen (prerecorded) and WebSocket /v1/listen (live)."""
