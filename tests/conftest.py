"""Loads the fixture plugins; fixtures live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.app",
    "tests.fixtures.worker",
    "tests.fixtures.proxy",
    "tests.fixtures.browser",
    "tests.fixtures.smtp",
    "tests.fixtures.telegram_api",
    "tests.fixtures.results",
    "tests.fixtures.binance_archive",
]
