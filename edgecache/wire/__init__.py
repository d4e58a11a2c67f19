"""The wire layer: our own HTTP/1.1 connection handling on uvloop and httptools, both
ways. ``types`` is the handler interface, ``connection`` the server state machine,
``upstream`` the client."""
