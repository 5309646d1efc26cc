"""Deepgram Speak (`/v1/speak`): text to speech as Deepgram's REST and WebSocket clients call it."""
