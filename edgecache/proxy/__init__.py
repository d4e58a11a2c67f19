"""The standalone reverse proxy: forwarder, server runner, TLS, access log."""
