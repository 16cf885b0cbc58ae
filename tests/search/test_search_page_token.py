"""Page tokens: MLflow's format and messages, checked against MLflow's own functions."""

from __future__ import annotations

import base64

import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchUtils

from search.searchdb import error_of
from tether.search.limits import validate_max_results
from tether.search.page_token import create_page_token, parse_page_token


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("offset", [1, 2, 10, 999, 50000, 2**40])
def test_tokens_are_mlflows(offset: int) -> None:
    token = create_page_token(offset)
    assert token == SearchUtils.create_page_token(offset).decode()
    assert parse_page_token(token) == offset
    assert SearchUtils.parse_start_offset_from_page_token(token) == offset


def test_no_token() -> None:
    assert parse_page_token(None) == 0
    assert parse_page_token("") == 0


@pytest.mark.parametrize(
    "token",
    [
        "abc",  # bad padding
        "!!!!",
        _b64(b"not json"),
        _b64(b"\xff\xfe"),
        _b64(b"{}"),
        _b64(b'{"offset": 0}'),
        _b64(b'{"offset": null}'),
        _b64(b'{"offset": "abc"}'),
        _b64(b'{"offset": "1.5"}'),
        _b64(b'{"other": 3}'),
    ],
)
def test_invalid_tokens_like_mlflow(token: str) -> None:
    with pytest.raises(MlflowException) as theirs:
        SearchUtils.parse_start_offset_from_page_token(token)
    assert error_of(lambda: parse_page_token(token)).message == theirs.value.message


@pytest.mark.parametrize(
    "token",
    [
        _b64(b"[1, 2]"),  # MLflow: AttributeError (a 500)
        _b64(b"5"),
        _b64(b'{"offset": [1]}'),  # MLflow: TypeError
        _b64(b'{"offset": -5}'),  # MLflow: a negative OFFSET reaches the database
        _b64(b'{"offset": 1e400}'),
        _b64(b'{"offset": NaN}'),
        _b64(b'{"offset": 99999999999999999999999}'),
        "é",
    ],
)
def test_tokens_mlflow_mishandles_are_invalid_parameters(token: str) -> None:
    assert error_of(lambda: parse_page_token(token)).message.startswith("Invalid page token")


def test_lenient_offsets_like_mlflow() -> None:
    for raw in [b'{"offset": "7"}', b'{"offset": 7.9}', b'{"offset": 7, "x": 1}']:
        assert parse_page_token(_b64(raw)) == SearchUtils.parse_start_offset_from_page_token(
            _b64(raw)
        )


@pytest.mark.parametrize("value", [0, -1, 50001, True, 1.5, None, "10"])
def test_max_results_validation(value: object) -> None:
    error_of(lambda: validate_max_results(value))  # type: ignore[arg-type]


def test_max_results_bounds() -> None:
    validate_max_results(1)
    validate_max_results(50000)
    assert error_of(lambda: validate_max_results(0)).message == (
        "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"
    )
