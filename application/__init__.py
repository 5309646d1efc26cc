"""Use cases, the ports they depend on, and projections folded from events."""
