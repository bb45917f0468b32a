"""A small, exact parser for Kubernetes resource quantities (used by the simulated scheduler and metrics).

Deliberately independent of the project's own ``airflow_k8s.executor.contract.quantity`` so the fake never shares a
bug with the code it tests.  Values are parsed to :class:`~decimal.Decimal` and the scheduler works in integer
*milli-units* (``cpu: "250m"`` -> 250, ``memory: "1Ki"`` -> 1_024_000) so fits are decided exactly.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}

# The exponent alternative is tried first so "1E3" is 1000 while "1E" is one exa.
_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?"
)

#: The regular expression the real API server quotes when it rejects a quantity.
QUANTITY_REGEX_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse ``"250m"``, ``"1.5Gi"``, ``"2e3"``, ``4`` ... into an exact Decimal; ``ValueError`` if malformed."""
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid quantity {value!r}")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimal literals
        raise ValueError(f"invalid quantity {value!r}") from exc
    suffix = match["suffix"] or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number.scaleb(int(suffix[1:]))
    return number * _SUFFIXES[suffix]


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def to_milli(value: str | int | float) -> int:
    """Quantity in milli-units, rounded up (the scheduler's unit for every resource)."""
    return int((parse_quantity(value) * 1000).to_integral_value(rounding=ROUND_CEILING))


def format_nanocores(milli_cpu: float) -> str:
    """CPU usage the way metrics-server reports it: integer nanocores with an ``n`` suffix."""
    return f"{round(milli_cpu * 1_000_000)}n"


def format_kibibytes(milli_bytes: float) -> str:
    """Memory usage the way metrics-server reports it: whole kibibytes with a ``Ki`` suffix."""
    return f"{round(milli_bytes / 1000 / 1024)}Ki"


def format_milli(milli: int) -> str:
    """Render milli-units back to a canonical quantity string (``1500`` -> ``"1500m"``, ``2000`` -> ``"2"``)."""
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


_DECIMAL_SUFFIXES = ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k"), (0, ""), (-3, "m"), (-6, "u"))
_BINARY_SUFFIXES = ((60, "Ei"), (50, "Pi"), (40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki"))


def is_binary(value: str | int | float) -> bool:
    """Whether a quantity is written in binary SI (``Ki``, ``Mi``...), which decides how sums are printed."""
    return isinstance(value, str) and value.strip()[-2:] in {s for _, s in _BINARY_SUFFIXES}


def format_quantity(value: Decimal, binary: bool = False) -> str:
    """The canonical string Go's ``resource.Quantity.String()`` prints for ``value`` (as in quota messages).

    Binary SI applies to whole numbers of at least 1024 (``1.5Gi`` -> ``1536Mi``); everything else is decimal SI
    with the largest suffix that keeps the mantissa whole (``0.5`` -> ``500m``, ``2000`` -> ``2k``), rounding up to
    nano units as Go does.
    """
    if value == 0:
        return "0"
    sign, value = ("-", -value) if value < 0 else ("", value)
    if binary and value >= 1024 and value == value.to_integral_value():
        whole = int(value)
        for exponent, suffix in _BINARY_SUFFIXES:
            if whole % (1 << exponent) == 0:
                return f"{sign}{whole >> exponent}{suffix}"
        return f"{sign}{whole}"
    nanos = int((value * 10**9).to_integral_value(rounding=ROUND_CEILING))
    for exponent, suffix in _DECIMAL_SUFFIXES:
        unit = 10 ** (exponent + 9)
        if nanos % unit == 0:
            return f"{sign}{nanos // unit}{suffix}"
    return f"{sign}{nanos}n"
