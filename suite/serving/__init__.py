"""Serving: an SGLang server's lifecycle (start, health, attach, stop). Imports only the foundation modules."""
