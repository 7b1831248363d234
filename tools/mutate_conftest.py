"""The root ``conftest.py`` of a mutation run's copy of the project (tools/mutate.py puts it there).

mutmut runs pytest once in its main process to learn which tests reach which function, then forks that
process once per mutant and runs pytest again in the child. Two things follow for a Django project:

- The test database: pytest-django's ``django_db_setup`` (with ``--reuse-db``) would run ``migrate`` in
  every child, a no-op that still costs about half a second, more than most mutants' tests. This override
  sets the database up once per process, as pytest-django does with ``--reuse-db``, and a child forked
  after that, which inherits the settings pointing at the test database, finds it ready.
- Open connections: a child inherits its parent's sockets. Each session closes its database connections at
  the end, so a forked child never writes into a connection its parent (and the next child) holds.
  Redis connections need nothing: redis-py makes new ones in a child process by itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections
from django.test.utils import setup_databases
from pytest_django.plugin import DjangoDbBlocker

_ready = False


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    global _ready  # noqa: PLW0603 - one flag per process, inherited by the processes mutmut forks
    if not _ready:
        with django_db_blocker.unblock():
            setup_databases(verbosity=0, interactive=False, keepdb=True, serialized_aliases=set())
        _ready = True
    yield
    connections.close_all()
