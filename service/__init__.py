"""A pastebin HTTP service. Importing this package opens nothing."""
