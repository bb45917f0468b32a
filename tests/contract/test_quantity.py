"""Kubernetes quantity parsing and formatting: exact, strict, with the resource rules."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity

from airflow_k8s.executor.contract import quantity
from airflow_k8s.executor.contract.errors import QuantityError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3920m", Decimal("3.92")),
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("1Ki", Decimal(1024)),
        ("512Mi", Decimal(512 * 1024**2)),
        ("1Gi", Decimal(1024**3)),
        ("1k", Decimal(1000)),
        ("1M", Decimal(10**6)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        ("12e-3", Decimal("0.012")),
        ("1E", Decimal(10**18)),  # exa, not an exponent without digits
        ("1E3", Decimal(1000)),
        ("250000000n", Decimal("0.25")),
        (2, Decimal(2)),
    ],
)
def test_valid_quantities_parse_to_their_exact_value(text, expected):
    assert quantity.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["500x", "1Kb", "1 Gi", "", "Gi", "1.2.3", "--1", "1e", "0x10", "1gi", True, None, [1]]
)
def test_malformed_quantities_are_rejected_with_the_text_in_the_message(text):
    with pytest.raises(QuantityError) as info:
        quantity.parse(text)
    assert repr(text) in str(info.value) or str(text) in str(info.value)


@pytest.mark.parametrize("text", ["0", "-1", "-500m", "0Gi"])
def test_cpu_and_memory_must_be_strictly_positive(text):
    with pytest.raises(QuantityError, match="greater than zero"):
        quantity.cpu(text)
    with pytest.raises(QuantityError, match="greater than zero"):
        quantity.memory(text)


def test_cpu_finer_than_one_millicore_is_rejected():
    with pytest.raises(QuantityError, match="finer than 1m"):
        quantity.cpu("0.5m")
    assert quantity.cpu("1m") == Decimal("0.001")


def test_memory_must_be_whole_bytes():
    with pytest.raises(QuantityError, match="whole number of bytes"):
        quantity.memory("0.5")
    assert quantity.memory("1.5Gi") == Decimal(3 * 512 * 1024**2)


def test_absurdly_large_exponents_are_rejected_instead_of_exhausting_memory():
    with pytest.raises(QuantityError, match="out of range"):
        quantity.parse("1e999999999")
    with pytest.raises(QuantityError, match="too large"):
        quantity.parse("9999999Ei")


def test_gpu_counts_are_whole_numbers():
    assert quantity.for_resource("nvidia.com/gpu", "1") == 1
    with pytest.raises(QuantityError, match="whole numbers"):
        quantity.for_resource("nvidia.com/gpu", "0.5")


def test_arithmetic_is_exact_where_floats_are_not():
    total = sum((quantity.parse("100m") for _ in range(3)), Decimal(0))
    assert total == Decimal("0.3")  # 0.1 + 0.1 + 0.1 != 0.3 in floats


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("0.25"), "250m"), (Decimal(2), "2"), (Decimal("1.5"), "1500m"), (Decimal("0.0005"), "0.0005")],
)
def test_cpu_formats_canonically(value, text):
    assert quantity.format_cpu(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(Decimal(1024**3), "1Gi"), (Decimal(512 * 1024**2), "512Mi"), (Decimal(1000), "1000")]
)
def test_memory_formats_with_the_largest_exact_binary_suffix(value, text):
    assert quantity.format_memory(value) == text


_SUFFIXES = ["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti"]


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=999), st.sampled_from(_SUFFIXES))
def test_agrees_with_the_official_client_on_every_valid_quantity(whole, frac, suffix):
    text = f"{whole}.{frac:03d}{suffix}"
    assert quantity.parse(text) == parse_quantity(text)


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3))
def test_formatted_cpu_parses_back_to_the_same_value(value):
    assert quantity.parse(quantity.format_cpu(value)) == value


@given(st.integers(min_value=1, max_value=2**50))
def test_formatted_memory_parses_back_to_the_same_value(value):
    assert quantity.parse(quantity.format_memory(Decimal(value))) == value
