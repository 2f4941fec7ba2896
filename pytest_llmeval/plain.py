"""A fast stand-in for what ``dataclasses.asdict`` does to the values inside a dataclass.

``asdict`` walks every field through ``copy.deepcopy``, which costs seconds when a run writes
tens of thousands of results. Our ``to_dict``/``to_json`` methods build their dicts field by
field and pass only the values that may hold containers through :func:`plain`, which returns
the same structure ``asdict`` would: atoms as they are, lists, tuples and dicts copied with their
type kept, dataclasses converted, anything else deep-copied.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

_ATOMS = frozenset((str, int, float, bool, type(None)))


def plain(value: Any) -> Any:
    """``value`` as it would appear inside ``dataclasses.asdict``'s result (a copy, never shared)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:  # atoms inline: a report's many small dicts cost no call per value
        return {k if type(k) in _ATOMS else plain(k): v if type(v) in _ATOMS else plain(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _ATOMS else plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple, as asdict keeps it
        return kind(*[plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return kind(plain(v) for v in value)
    if isinstance(value, dict):
        return kind((plain(k), plain(v)) for k, v in value.items())
    return copy.deepcopy(value)
