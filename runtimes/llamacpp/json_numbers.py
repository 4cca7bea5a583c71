"""GBNF for JSON numbers within JSON Schema's bounds (minimum, maximum, exclusiveMinimum,
exclusiveMaximum): integer ranges written digit by digit, and decimals between bounds.

Every grammar here admits only numbers inside the bounds, and never all of them: an unbounded
integer part has at most DIGITS digits (llama.cpp's limit too, which keeps a model from
running on), a fraction at most FRACTION digits, and a decimal bound that is not a whole
number is tightened to the whole number inside it (minimum 0.5 gives numbers from 1; maximum
2.5 gives numbers up to 2). Bounded numbers are written without an exponent.
"""

from __future__ import annotations

import math
from decimal import Decimal

DIGITS = 16
FRACTION = 15


class EmptyRange(ValueError):
    """No number meets the bounds."""


def _digits(n: int) -> str:
    return "" if n == 0 else "[0-9]" if n == 1 else f"[0-9]{{{n}}}"


def _range(lo: str, hi: str) -> str:
    return f'"{lo}"' if lo == hi else f"[{lo}-{hi}]"


def _same_length(lo: str, hi: str) -> str:
    """Digit strings from `lo` to `hi` (of one length, leading zeros allowed)."""
    if not lo:
        return ""
    rest = len(lo) - 1
    tail_lo, tail_hi = lo[1:], hi[1:]
    if lo[0] == hi[0]:
        return " ".join(filter(None, [f'"{lo[0]}"', _same_length(tail_lo, tail_hi)]))
    low_full, high_full = tail_lo == "0" * rest, tail_hi == "9" * rest
    first = lo[0] if low_full else chr(ord(lo[0]) + 1)
    last = hi[0] if high_full else chr(ord(hi[0]) - 1)
    alternatives = []
    if not low_full:
        alternatives.append(f'"{lo[0]}" {_same_length(tail_lo, "9" * rest)}')
    if first <= last:
        alternatives.append(" ".join(filter(None, [_range(first, last), _digits(rest)])))
    if not high_full:
        alternatives.append(f'"{hi[0]}" {_same_length("0" * rest, tail_hi)}')
    return alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")"


def naturals(lo: int, hi: int | None) -> str:
    """Whole numbers from `lo` (>= 0) to `hi` (None: up to DIGITS digits, or lo's length),
    written without leading zeros."""
    longest = len(str(hi)) if hi is not None else max(DIGITS, len(str(lo)))
    alternatives = []
    for length in range(len(str(lo)), longest + 1):
        a = max(lo, 10 ** (length - 1) if length > 1 else 0)
        b = 10**length - 1 if hi is None else min(hi, 10**length - 1)
        if a > b:
            continue
        if hi is None and a == 10 ** (length - 1) and length > 1:
            # every longer length is whole too: one alternative for them all
            more = (
                f"[0-9]{{{length - 1},{longest - 1}}}" if longest > length else _digits(length - 1)
            )
            alternatives.append(f"[1-9] {more}")
            break
        alternatives.append(_same_length(str(a), str(b)))
    if not alternatives:
        raise EmptyRange(f"no whole number from {lo} to {hi}")
    return alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")"


def integer_bounds(
    minimum: Decimal | None,
    maximum: Decimal | None,
    exclusive_minimum: Decimal | None,
    exclusive_maximum: Decimal | None,
) -> tuple[int | None, int | None]:
    """The least and greatest integers the bounds allow (None: unbounded)."""
    lows = [math.ceil(minimum)] if minimum is not None else []
    if exclusive_minimum is not None:
        lows.append(math.floor(exclusive_minimum) + 1)
    highs = [math.floor(maximum)] if maximum is not None else []
    if exclusive_maximum is not None:
        highs.append(math.ceil(exclusive_maximum) - 1)
    return max(lows, default=None), min(highs, default=None)


def integers(lo: int | None, hi: int | None) -> str:
    """A JSON integer from `lo` to `hi` (either may be None: unbounded)."""
    if lo is not None and hi is not None and lo > hi:
        raise EmptyRange(f"no integer from {lo} to {hi}")
    alternatives = []
    if lo is None or lo < 0:  # negatives, by their magnitude
        least = 1 if hi is None or hi >= 0 else -hi
        alternatives.append(f'"-" {naturals(least, None if lo is None else -lo)}')
    if hi is None or hi >= 0:
        alternatives.append(naturals(max(lo or 0, 0), hi))
    return alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")"


def _magnitudes(
    low: Decimal, low_exclusive: bool, high: Decimal | None, high_exclusive: bool
) -> list[str]:
    """Alternatives for unsigned decimals m with low < m (or <=) and m < high (or <=)."""
    fraction = f'("." [0-9]{{1,{FRACTION}}})?'
    nonzero = f'"." [0-9]{{0,{FRACTION - 1}}} [1-9]'
    first = math.ceil(low)
    only_above = low_exclusive and low == first  # `first` itself is out; first.5 is in
    last: int | None = None
    last_whole = False  # `last` itself (no fraction) is in, above the whole-fraction range
    if high is not None:
        last = math.floor(high)
        last_whole = not (high_exclusive and high == last)
    out = []
    top = None if last is None else last - 1  # whole parts that take any fraction
    bottom = first + 1 if only_above else first
    if top is None or bottom <= top:
        out.append(f"{naturals(bottom, top)} {fraction}")
    if only_above and (last is None or first < last):
        out.append(f"{naturals(first, first)} {nonzero}")
    if last_whole and last is not None and last >= first and not (last == first and only_above):
        out.append(naturals(last, last))
    return out


def decimals(
    minimum: Decimal | None,
    maximum: Decimal | None,
    exclusive_minimum: Decimal | None,
    exclusive_maximum: Decimal | None,
) -> str:
    """A JSON number (a decimal, no exponent) inside the bounds."""
    low, low_exclusive = _tighter(minimum, exclusive_minimum, max)
    high, high_exclusive = _tighter(maximum, exclusive_maximum, min)
    if (
        low is not None
        and high is not None
        and (low > high or (low == high and (low_exclusive or high_exclusive)))
    ):
        raise EmptyRange(f"no number between {low} and {high}")
    alternatives = []
    if low is None or low < 0:  # negatives, by their magnitude
        if high is not None and high < 0:
            m_low, m_low_exclusive = -high, high_exclusive
        else:
            m_low, m_low_exclusive = Decimal(0), True
        m_high = None if low is None else -low
        alternatives += [
            f'"-" {a}' for a in _magnitudes(m_low, m_low_exclusive, m_high, low_exclusive)
        ]
    if high is None or high > 0 or (high == 0 and not high_exclusive):
        if low is None or low < 0:
            p_low, p_low_exclusive = Decimal(0), False
        else:
            p_low, p_low_exclusive = low, low_exclusive
        alternatives += _magnitudes(p_low, p_low_exclusive, high, high_exclusive)
    if not alternatives:
        raise EmptyRange(f"no decimal between {low} and {high} the grammar can write")
    return alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")"


def _tighter(
    inclusive: Decimal | None, exclusive: Decimal | None, pick
) -> tuple[Decimal | None, bool]:
    """One bound from an inclusive and an exclusive one: the tighter (`pick` is max for lower
    bounds, min for upper ones); exclusive wins a tie."""
    if inclusive is None:
        return exclusive, exclusive is not None
    if exclusive is None:
        return inclusive, False
    tight = pick(inclusive, exclusive)
    return tight, tight == exclusive
