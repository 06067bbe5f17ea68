"""ISO 3166 country codes: alpha-3 (OpenRTB's `device.geo.country`) to alpha-2 (the store's)."""

from __future__ import annotations

from functools import cache

import pyarrow as pa
import pycountry


@cache
def alpha3_to_alpha2() -> pa.Table:
    """(alpha3, alpha2) for every country pycountry knows, as an Arrow table."""
    pairs = sorted((c.alpha_3, c.alpha_2) for c in pycountry.countries)
    return pa.table({"alpha3": [a for a, _ in pairs], "alpha2": [b for _, b in pairs]})
