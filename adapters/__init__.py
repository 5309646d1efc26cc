"""One module per technology, each implementing an application port."""
