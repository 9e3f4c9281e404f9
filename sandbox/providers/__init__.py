"""Every served provider's declaration (``operations.PROVIDER``): create_app() mounts them in this order."""
from .finleap import PROVIDER as _finleap
from .fino import PROVIDER as _fino
from .finpass import PROVIDER as _finpass
from .open_finance import PROVIDER as _open_finance

PROVIDERS = [_open_finance, _finleap, _finpass, _fino]
