"""Shared fixtures: a real PostgreSQL (SLUICE_TEST_DATABASE_URL, else the embedded server), a
fresh database per test cloned from a migrated template, and an S3-compatible server process.

Fixture modules are plugins, one per concern.
"""

pytest_plugins = [
    "tests.fixtures.fix_db",
    "tests.fixtures.fix_s3",
    "tests.fixtures.fix_env",
    "tests.fixtures.fix_redis",
]
