"""The typed store: SQLModel tables and the only code that touches them."""
