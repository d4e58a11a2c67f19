"""The parts of ``edgecache.config.Settings``, one module per concern: ``cache``,
``compression``, ``auth``, ``proxy`` (``edgecache proxy`` only) and ``server``
(listening, TLS, logs, limits). ``fields`` derives each setting's parser, check, flag
and help from its annotation and metadata; ``values`` reads and shows sizes and
durations; ``environ`` reads ``EDGECACHE_*``; ``flags`` makes the CLI flags."""
