from typing import Any

# get_cpu_info(): a JSON-like document whose keys depend on the platform (vendor_id_raw,
# brand_raw, flags, ...); callers read it with .get() and a default.
def get_cpu_info() -> dict[str, Any]: ...
