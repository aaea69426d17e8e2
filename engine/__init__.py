"""Bundle pricing studio engine: data layer, choice model, bundles and pricing.

The engine never imports streamlit; everything here is usable from Python and the CLI
(``python -m engine --help``).
"""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
__version__ = "0.1.0"
