"""The wire layer: our own HTTP/1.1 connection handling (httptools, uvloop), both ways."""
