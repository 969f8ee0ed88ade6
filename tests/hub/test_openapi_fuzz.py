"""Schemathesis over the hub's OpenAPI schema, against a real hub (all plug-ins, demo data) over HTTP.

Every operation gets generated requests, valid and invalid; no response may be
a 5xx and every response must match the schema (status code, content type,
body). The admin token is chosen through ``GRIDSENTINEL_ADMIN_TOKEN`` so the
write paths are reached, not only refused. Bounded so the whole file takes well
under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from hub.config import HubSettings
from hub.service import Hub

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "gst_fuzz-admin-token-0123456789abcdefghijkl"
MAX_EXAMPLES = 5
#: Undocumented status codes (404, 409, 401... that routes do not declare) are not checked: see the report.
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
#: Operations fuzzing cannot drive: the live stream never ends a response.
EXCLUDED_PATHS = r"^/api/v1/stream$"


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, dict[str, str]]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("GRIDSENTINEL_ADMIN_TOKEN", ADMIN_TOKEN)
    data_dir: Path = tmp_path_factory.mktemp("fuzz-hub")
    hub = Hub(HubSettings(data_dir=data_dir, http_port=0, broker_port=0, demo=True))
    try:
        hub.start()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        me = httpx.get(f"http://127.0.0.1:{hub.http_port}/api/v1/me", headers=headers, timeout=5)
        if me.status_code != 200:  # the token mechanism changed: fuzz as the demo viewer instead
            headers = {}
        print(f"fuzzing as {'admin (token)' if headers else 'demo viewer'}")
        yield hub, headers
    finally:
        hub.stop()
        mp.undo()


@pytest.fixture(scope="module")
def api_schema(fuzz_hub: tuple[Hub, dict[str, str]]) -> schemathesis.BaseSchema:
    hub, _headers = fuzz_hub
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{hub.http_port}/openapi.json")
    return schema.exclude(path_regex=EXCLUDED_PATHS)


def _fuzz(op: Any, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """Fuzz one operation; None when clean, else the failure text (with the request to replay)."""

    @given(case=op.as_strategy(mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failure text has the request to replay
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, timeout=10, checks=CHECKS)

    try:
        run()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Unsatisfiable:
        return None  # nothing to negate in this operation (no parameters or body)
    except BaseException as exc:  # collect every operation's failures, then report them together
        return f"{op.label} [{mode.value}]: {str(exc)[:1200]}"
    return None


def test_api_never_fails_and_matches_its_schema(
    api_schema: schemathesis.BaseSchema, fuzz_hub: tuple[Hub, dict[str, str]]
) -> None:
    _hub, headers = fuzz_hub
    results: list[Any] = list(api_schema.get_all_operations())
    operations = [result.ok() for result in results]
    assert len(operations) > 30
    failures: list[str] = []
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _fuzz(op, mode, headers)
            if failure is not None:
                failures.append(failure)
    assert not failures, "\n\n".join(failures)
