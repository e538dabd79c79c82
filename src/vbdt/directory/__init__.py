"""The agency directory: agencies of the four levels, recipient selectors, the national map.

:mod:`.agencies` holds :class:`Directory` and its records, :mod:`.selectors` parses the selector
syntax shared by the API and the CLI, :mod:`.national` builds the real 2025 map, :mod:`.generated` a stand-in of the pre-2025 size.
"""

from vbdt.directory.agencies import AgencyRecord, Directory
from vbdt.directory.generated import pre2025_shape_directory
from vbdt.directory.national import national_directory
from vbdt.directory.selectors import Selector, parse_selector

__all__ = ["AgencyRecord", "Directory", "Selector", "national_directory", "parse_selector", "pre2025_shape_directory"]
