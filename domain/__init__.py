"""The pure core: value objects, domain events, policies and errors. No I/O."""
