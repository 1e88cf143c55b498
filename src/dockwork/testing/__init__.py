"""The test side: what a project's test run uses, apart from the tasks and the stack.

- :mod:`.plugin`: the pytest plugin (entry point ``pytest11``), its fixtures and header;
- :mod:`.servers`: the run's test servers (PostgreSQL, Redis, compose services) and the
  backends that start them (Docker, embedded, external);
- :mod:`.databases`: per-process databases made from a migrated template;
- :mod:`.pytest_databases`: pytest-databases' fixture names served by dockwork's servers.

Nothing below :mod:`dockwork.testing` imports from it; the configuration and the kinds of
server (:mod:`dockwork.kinds`) sit below it. Importing this package imports nothing.
"""
