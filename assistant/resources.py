"""Resources: find the `prompts/` and `web/` folders from a checkout or from an installed wheel.

In a checkout they sit at the project root, beside `assistant/`. A wheel carries them inside the
package as `assistant/_data/prompts` and `assistant/_data/web` (see pyproject's force-include).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str, package_dir: Path = _PACKAGE) -> Path:
    """The folder `name` ("prompts" or "web"); raises FileNotFoundError naming where it looked."""
    candidates = [package_dir / "_data" / name, package_dir.parent / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{name}/ not found; looked in " + ", ".join(map(str, candidates)))
