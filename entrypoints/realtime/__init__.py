"""OpenAI's Realtime API: WebSocket /v1/realtime, and client secrets for browsers."""
