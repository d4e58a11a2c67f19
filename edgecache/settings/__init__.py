"""The parts of ``edgecache.config.Settings``, one module per concern: ``cache``,
``compression``, ``auth``, ``proxy`` (``edgecache proxy`` only) and ``server`` (listening,
TLS, limits). ``fields`` derives parsers, checks and flags from their annotations;
``values`` reads and shows sizes and durations; ``environ`` reads ``EDGECACHE_*``."""
