"""Value grammars: exact, ASCII-only, bounded; booleans as Airflow reads them; image references."""

from __future__ import annotations

import pytest

from airflow_k8s.executor.contract import k8snames, parsers, quantity
from airflow_k8s.executor.contract.errors import QuantityError

SHA = "a" * 64


@pytest.mark.parametrize(("raw", "value"), [("True", True), ("t", True), ("1", True), (" FALSE ", False),
                                            ("f", False), ("0", False), ("True  # inline comment", True)])  # fmt: skip
def test_booleans_parse_as_airflow_parses_them(raw, value):
    assert parsers.parse_bool(raw) is value


@pytest.mark.parametrize("raw", ["yes", "no", "on", "off", "", "truee", "\uff12"])
def test_booleans_airflow_would_reject_are_rejected(raw):
    with pytest.raises(ValueError, match="boolean"):
        parsers.parse_bool(raw)


@pytest.mark.parametrize(
    "value",
    ["abc\n", "abc\r", "\uff41\uff42\uff43", "abc ", "a" * 64],
)
def test_names_and_label_values_are_ascii_and_whole(value):
    """``$`` in a ``re.match`` pattern accepts a trailing newline; the API server does not."""
    assert not k8snames.is_dns1123_label(value)
    assert not k8snames.is_label_value(value)


def test_label_keys_and_env_names_reject_a_trailing_newline():
    assert k8snames.is_label_key("app") and not k8snames.is_label_key("app\n")
    assert k8snames.is_env_name("HOME") and not k8snames.is_env_name("HOME\n")
    assert k8snames.is_dns1123_subdomain("a.b") and not k8snames.is_dns1123_subdomain("a.b\n")


@pytest.mark.parametrize("text", ["1Gi\n", "٣", "1\u0660", "\uff11", "500 m"])
def test_quantities_are_ascii_and_whole(text):
    with pytest.raises(QuantityError):
        quantity.parse(text)


@pytest.mark.parametrize("raw", ["٣", "1\n2", "12345678901234567890", "1e3", "0x10"])
def test_whole_numbers_are_ascii_digits_only(raw):
    with pytest.raises(ValueError, match="whole number"):
        parsers.int_parser(0, 10**30)(raw)


def test_whole_numbers_are_bounded_on_both_sides():
    parse = parsers.int_parser(1, 256)
    assert parse(" 256 ") == 256
    with pytest.raises(ValueError, match="<= 256"):
        parse("257")
    with pytest.raises(ValueError, match=">= 1"):
        parse("0")


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e400", "0", "-1", "10001"])
def test_rates_are_finite_positive_and_bounded(raw):
    with pytest.raises(ValueError):
        parsers.float_parser(0.0, 10_000.0)(raw)


@pytest.mark.parametrize(
    "reference",
    [
        "apache/airflow:3.3.2",
        "apache/airflow:3.3.2-python3.11",
        "registry.k8s.io/pause:3.10",
        "localhost:5000/team/image",
        "ghcr.io/org/a__b/c-d.e:v1",
        f"example.com/x@sha256:{SHA}",
        f"example.com:443/x:tag@sha256:{SHA}",
        "[::1]:5000/x:1",
        "busybox",
    ],
)
def test_valid_image_references_are_accepted(reference):
    assert parsers.image(reference) == reference


@pytest.mark.parametrize(
    "reference",
    [
        "apache/Airflow:3",  # upper case in the path (a first component may be a registry host)
        "has space:1",
        "a:b:c",
        "a@sha256:xyz",
        "-a",
        "a//b",
        "a:" + "t" * 129,
        "a:-tag",
        "a\n",
        " a",
        "\uff41",
        "",
        "a/" + "b" * 260,
    ],
)
def test_invalid_image_references_are_rejected(reference):
    with pytest.raises(ValueError, match="container image reference"):
        parsers.image(reference)


@pytest.mark.parametrize("name", sorted(k8snames.SYSTEM_NAMESPACES))
def test_system_namespaces_are_refused(name):
    with pytest.raises(ValueError, match="system namespace"):
        parsers.namespace(name)


def test_json_settings_report_position_and_depth_problems():
    with pytest.raises(ValueError, match="line 1 column 2"):
        parsers.node_selector("{not json")
    with pytest.raises(ValueError, match="nested too deeply"):
        parsers.tolerations("[" * 100_000 + "]" * 100_000)


def test_prices_are_plain_decimals():
    assert str(parsers.price("0.08")) == "0.08"
    for raw in ("-1", "1e3", "NaN", "Infinity", "0.0000000001"):
        with pytest.raises(ValueError, match="price"):
            parsers.price(raw)
