"""segforge's own plugins.

Each module here is a plugin like any third-party one: it implements ``segforge_register_*``
hooks with :data:`segforge.hookimpl` and is listed in ``segforge.plugins.BUILTIN_PLUGINS``, so
it can be blocked with ``-p no:builtin.<name>`` and shows up in ``segforge plugins list``.
Modules must stay cheap to import (no torch at module level): the plugin manager imports all
of them even for ``segforge plugins list``.
"""
