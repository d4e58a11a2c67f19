"""The wire layer: edgecache's own HTTP/1.1 server connection handling on uvloop and
httptools. ``types`` is the handler interface; ``connection`` the state machine."""
