"""Alembic environment for syncd: runs on the connection syncd hands over, or builds one from the URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from syncd.store import tables

target_metadata = tables.SQLModel.metadata


def _run(connection: Connection) -> None:
    """Run the migrations on one synchronous connection."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables so later migrations work there too.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    """Used only by the plain `alembic` command line: open the URL the config names."""
    from syncd.store.database import Database

    db = await Database.open(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await db.close()


if context.is_offline_mode():
    raise SystemExit("syncd migrations run online only: use `syncd db upgrade`")

handed_over = context.config.attributes.get("connection")
if handed_over is not None:
    _run(handed_over)
else:
    asyncio.run(_run_from_url(context.config.get_main_option("sqlalchemy.url") or ""))
