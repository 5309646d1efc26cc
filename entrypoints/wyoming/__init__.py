"""Wyoming, Home Assistant's voice protocol, over TCP (WYOMING_URI)."""
