"""Command driver: output parsing (JSON, key=value) and failures as DriverError with a reason."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pydantic import ValidationError

from edge.drivers import DriverError, get_driver_spec
from edge.drivers.command import CommandConfig, CommandDriver, CommandOutputError, parse_kv, parse_output
from edge.wire import EventState, Severity


def run(code: str, **over: Any) -> CommandDriver:
    """A driver running ``python -c code``."""
    body: dict[str, Any] = {"type": "command", "argv": [sys.executable, "-c", code]}
    body.update(over)
    return CommandDriver(CommandConfig.model_validate(body))


def test_parse_kv_types_and_comments() -> None:
    text = "# header\n\ntemp_c = 21.5\ncount=3\nok=true\nbad=FALSE\nneg=-4\nexp=1e3\n"
    assert parse_kv(text) == {"temp_c": 21.5, "count": 3, "ok": True, "bad": False, "neg": -4, "exp": 1000.0}
    assert type(parse_kv("n=3")["n"]) is int


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("temp_c 21", "line 1: expected name=value"),
        ("a=1\ntemp=hot", "line 2: temp: 'hot' is not a number"),
        ("Temp=1", "line 1: metric name 'Temp'"),
        ("x=nan", "line 1: x: nan is not a finite number"),
        ("# only a comment\n", "no name=value lines"),
    ],
)
def test_parse_kv_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(CommandOutputError, match=message):
        parse_kv(text)


def test_parse_json_flat_and_wrapped() -> None:
    sample = parse_output('{"load": 0.5, "jobs": 3, "up": true, "host": "box"}')
    assert sample.metrics == {"load": 0.5, "jobs": 3, "up": True}
    sample = parse_output(
        '{"metrics": {"q": 7}, "events": [{"type": "queue_full", "severity": "major", "message": "q>5"}]}'
    )
    assert sample.metrics == {"q": 7}
    (event,) = sample.events
    assert (event.type, event.state, event.severity, event.message) == (
        "queue_full",
        EventState.ACTIVE,
        Severity.MAJOR,
        "q>5",
    )


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("[1, 2]", "json", "must be a JSON object, not list"),
        ("{not json", "json", "output is not JSON"),
        ('{"name": "x"}', "auto", "no numeric metrics"),
        ('{"metrics": {"a": 1}, "events": [{"type": "x", "state": "on"}]}', "auto", "events\\[0\\]"),
    ],
)
def test_parse_json_errors(text: str, fmt: str, message: str) -> None:
    with pytest.raises(CommandOutputError, match=message):
        parse_output(text, fmt)


def test_runs_the_program_without_a_shell() -> None:
    sample = run("print('a=1'); print('b=2.5')").poll(0)
    assert sample.metrics == {"a": 1, "b": 2.5}
    # a shell would expand $HOME; argv is passed verbatim
    assert run(
        "import sys; print('n=' + str(len(sys.argv[1])))",
        argv=[sys.executable, "-c", "import sys; print('n=' + str(len(sys.argv[1])))", "$HOME"],
    ).poll(0).metrics == {"n": 5}


def test_env_is_passed() -> None:
    sample = run("import os; print('v=' + os.environ['GS_TEST_V'])", env={"GS_TEST_V": "42"}).poll(0)
    assert sample.metrics == {"v": 42}


def test_nonzero_exit_names_code_and_stderr() -> None:
    with pytest.raises(DriverError, match=r"exited with 3: boom") as info:
        run("import sys; sys.stderr.write('boom'); sys.exit(3)").poll(0)
    assert info.value.retryable


def test_timeout() -> None:
    with pytest.raises(DriverError, match=r"timed out after 0.3s"):
        run("import time; time.sleep(5)", timeout_s=0.3).poll(0)


def test_missing_program_is_permanent() -> None:
    driver = CommandDriver(CommandConfig.model_validate({"type": "command", "argv": ["/nonexistent/gs-probe"]}))
    with pytest.raises(DriverError, match="not found") as info:
        driver.poll(0)
    assert info.value.retryable is False


def test_bad_output_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="line 1: expected name=value"):
        run("print('hello world')").poll(0)


def test_config_validation_names_the_key() -> None:
    model = get_driver_spec("command").config_model
    with pytest.raises(ValidationError) as info:
        model.model_validate({"type": "command", "argv": ["true"], "timeout": 3})
    assert info.value.errors()[0]["loc"] == ("timeout",)
    with pytest.raises(ValidationError) as info:
        model.model_validate({"type": "command", "argv": []})
    assert info.value.errors()[0]["loc"] == ("argv",)
