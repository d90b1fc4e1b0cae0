"""schemathesis generates requests from /openapi.json against a real `forum serve`:
no request may produce a 500, and every response must match the documented schema.

(schemathesis' own pytest plugin does not work with this pytest, so the test
drives its strategies with Hypothesis directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.server import ForumProcess


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):  # type: ignore[no-untyped-def]
    """The batch endpoint takes NDJSON text: send generated strings as they are."""
    return value.encode() if isinstance(value, str) else str(value).encode()


@pytest.fixture(scope="module")
def forum_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ForumProcess(Path(tmp_path_factory.mktemp("fuzz")), author_rate=0, address_rate=0).start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.mark.slow
def test_api_conforms_to_its_schema(forum_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{forum_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            # Schema-valid is not enough to be accepted: an envelope must also carry a
            # valid signature, which no generator produces. Every other check applies.
            case.call_and_validate(base_url=forum_url, excluded_checks=[positive_data_acceptance])

        check()
