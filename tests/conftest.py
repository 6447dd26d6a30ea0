"""Root test configuration: shared fixtures live in ``tests/fixtures/`` (one module per area)."""

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.pubsub",
    "tests.fixtures.storage",
    "tests.fixtures.database",
    "tests.fixtures.blueprints",
    "tests.fixtures.messaging",
    "tests.fixtures.gemini",
]
