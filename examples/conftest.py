# The plugin by name, so the example also runs from a checkout whose edgecache is not
# (re)installed; once installed, the entry point loads the same plugin (same name).
pytest_plugins = ["edgecache.testing"]
