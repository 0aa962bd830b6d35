"""aiohttp application: webhook receiver, admin API, health and metrics."""
