"""The outside of the service: settings, composition root, HTTP/WebSocket app, CLI."""
