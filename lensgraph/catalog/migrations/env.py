"""Alembic environment: Catalog.migrate() hands over an open connection; nothing else is configured."""

from alembic import context

from lensgraph.catalog.tables import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata,
                  render_as_batch=True)  # batch mode: SQLite cannot ALTER most things in place
with context.begin_transaction():
    context.run_migrations()
