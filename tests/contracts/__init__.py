"""Contract checks: the vendors' OpenAPI files and the helper that validates responses against them."""
