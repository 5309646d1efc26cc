"""The v1 API: REST routes and the /ws/voice WebSocket, the service's original protocol."""
