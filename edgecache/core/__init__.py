"""Sans-IO core: parsers and RFC 9111 policy. Standard library only, no clock, no I/O."""
