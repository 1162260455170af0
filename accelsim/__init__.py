"""accelsim: what do we get for our money if we change the accelerator hardware?"""

from accelsim.devices import DeviceProfile, DeviceSpec, catalog, load_device
from accelsim.errors import AccelsimError

__version__ = "0.1.0"

__all__ = ["AccelsimError", "DeviceProfile", "DeviceSpec", "__version__", "catalog", "load_device"]
