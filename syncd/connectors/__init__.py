"""Connectors: one per external system, all behind the protocol in base.py."""
