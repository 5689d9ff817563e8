"""A server over the committed bundles, shared by their end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bundles._bundles import BUNDLES
from tests.test_server import Running, running


@pytest.fixture(scope="session")
def committed_server() -> Iterator[Running]:
    """One server over the committed bundles (bundles/), endpointing off: one final per stream."""
    with running(BUNDLES, endpointing=False) as r:
        yield r
