"""Kubernetes resource quantities, parsed exactly.

The seed's sketches did ``int(node.status.allocatable['cpu'])`` (fails on ``"3920m"``) and
``memory.replace('Gi', '')`` (wrong for ``Mi``, ``Ki``, plain bytes).  This module implements the
apimachinery grammar instead, with :class:`decimal.Decimal` so arithmetic is exact::

    quantity        ::= signedNumber suffix
    suffix          ::= binarySI | decimalExponent | decimalSI
    binarySI        ::= Ki | Mi | Gi | Ti | Pi | Ei
    decimalSI       ::= n | u | m | "" | k | M | G | T | P | E
    decimalExponent ::= ("e" | "E") signedNumber

``"1E"`` is one exa (a decimalSI suffix), ``"1E3"`` is one thousand (an exponent), as in
Kubernetes.  Anything else (``"500x"``, ``"1Kb"``, ``"1 Gi"``) is rejected; schema validators
accept such strings because the OpenAPI type of a quantity is just "string".

Resource-specific rules layered on top (:func:`cpu` and :func:`memory`): values must be strictly
positive, CPU may not be finer than 1m (the API server refuses it), memory must be a whole number
of bytes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from airflow_k8s.executor.contract.errors import QuantityError

_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_QUANTITY_RE = re.compile(
    rf"(?P<num>{_NUMBER})(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?", re.ASCII
)

_BINARY = {s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# Kubernetes stores quantities as int64 scaled values; anything beyond is not representable.
MAX_QUANTITY = Decimal(2**63 - 1)
_MAX_EXPONENT = 30
_MILLI = Decimal("0.001")


def parse(text: object) -> Decimal:
    """Parse a quantity string into its exact value in base units (cores, bytes, devices).

    Integers are accepted too (``2`` means two cores / two bytes), as YAML often yields them.
    Raises :class:`QuantityError` naming the offending text.
    """
    if isinstance(text, bool):
        raise QuantityError(f"{text!r} is not a Kubernetes quantity")
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, float):
        # YAML "0.5" arrives as a float; repr() gives the shortest exact-looking form.
        text = repr(text)
    if not isinstance(text, str):
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (expected a string)")
    match = _QUANTITY_RE.fullmatch(text)
    if match is None:
        raise QuantityError(
            f"{text!r} is not a Kubernetes quantity (expected e.g. '500m', '2', '1.5', '512Mi', '1Gi', '1e3')"
        )
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - regex already restricts the form
        raise QuantityError(f"{text!r} is not a Kubernetes quantity") from exc
    if match["exp"] is not None:
        exponent = int(match["exp"][1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent {exponent} is out of range")
        value = number.scaleb(exponent)
    elif match["suffix"] is not None:
        suffix = match["suffix"]
        value = number * (_BINARY.get(suffix) or _DECIMAL[suffix])
    else:
        value = number
    if abs(value) > MAX_QUANTITY:
        raise QuantityError(f"{text!r} is too large to be a Kubernetes quantity")
    return value


def positive(text: object, *, what: str = "quantity") -> Decimal:
    """Parse and require a strictly positive value (``"0"`` and ``"-1"`` are rejected)."""
    value = parse(text)
    if value <= 0:
        raise QuantityError(f"{text!r}: {what} must be greater than zero")
    return value


def cpu(text: object) -> Decimal:
    """A CPU amount in cores: positive, no finer than 1m."""
    value = positive(text, what="cpu")
    if value % _MILLI != 0:
        raise QuantityError(f"{text!r}: cpu precision finer than 1m is not allowed")
    return value


def memory(text: object) -> Decimal:
    """A memory amount in bytes: positive and a whole number of bytes."""
    value = positive(text, what="memory")
    if value != value.to_integral_value():
        raise QuantityError(f"{text!r}: memory must be a whole number of bytes")
    return value


def count(text: object) -> Decimal:
    """An extended-resource count (``nvidia.com/gpu``): a positive whole number."""
    value = positive(text, what="device count")
    if value != value.to_integral_value():
        raise QuantityError(f"{text!r}: device counts must be whole numbers")
    return value


def for_resource(name: str, text: object) -> Decimal:
    """Parse ``text`` with the rules of resource ``name`` (cpu, memory, or an extended one)."""
    if name == "cpu":
        return cpu(text)
    if name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return memory(text)
    if "/" in name:
        return count(text)
    return positive(text, what=name)


def format_cpu(cores: Decimal) -> str:
    """Render cores canonically: whole cores as ``"2"``, otherwise millicores ``"250m"``."""
    if cores == cores.to_integral_value():
        return str(int(cores))
    millis = cores * 1000
    if millis == millis.to_integral_value():
        return f"{int(millis)}m"
    return format(cores.normalize(), "f")


def format_memory(size: Decimal) -> str:
    """Render bytes with the largest exact binary suffix (``"512Mi"``, ``"1Gi"``, ``"1000"``)."""
    value = int(size)
    if value != size:
        return format(size.normalize(), "f")
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = int(_BINARY[suffix])
        if value and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def format_for_resource(name: str, value: Decimal) -> str:
    """Canonical text for ``value`` of resource ``name``."""
    if name == "cpu":
        return format_cpu(value)
    if name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return format_memory(value)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")
