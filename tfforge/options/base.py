"""What every command's typed options have: where each value came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tfforge.errors import Origin


@dataclass(frozen=True, kw_only=True)
class Options:
    """Base of the generated option classes (tfforge/options/typed/): frozen, keyword-only,
    one field per option; `origins` says where each value came from (tfforge.settings fills
    it; a directly made instance has only defaults)."""

    origins: Mapping[str, Origin] = field(default_factory=dict, compare=False, repr=False)

    def origin(self, name: str) -> Origin:
        """Where option `name` got its value (Origin('default', ...) when nothing set it)."""
        return self.origins.get(name) or Origin("default", f"default {name}")

    def where(self, name: str) -> str:
        """How a message names the value's origin: '--gcc-version', 'TFFORGE_X', a toml key."""
        return str(self.origin(name))

    def given(self, name: str) -> bool:
        """True when the command line set option `name`."""
        return self.origin(name).kind == "flag"

    def is_set(self, name: str) -> bool:
        """True when anything but the default set option `name`."""
        return self.origin(name).kind != "default"
