"""How configuration dataclasses declare their fields.

Every configuration section is a frozen dataclass.  A field's default, range, unit and meaning are declared once
with :func:`spec`; the loader (``flightsw.config.loader``) uses them to validate YAML and report errors with the
file, line, column and key path, and the docs are generated from them.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def spec(default: Any = dataclasses.MISSING, *, min: float | None = None, max: float | None = None,  # noqa: A002
         unit: str = "", doc: str = "", choices: tuple | None = None, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with validation metadata.

    ``min``/``max`` are inclusive bounds for numbers (and for the length of strings or lists when the value is
    a string or a list); ``choices`` limits a value to a fixed set.
    """
    metadata = {"min": min, "max": max, "unit": unit, "doc": doc, "choices": choices}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
