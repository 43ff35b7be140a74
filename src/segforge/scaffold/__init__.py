"""``segforge plugins new``: a plugin package that works as generated, for users who install from PyPI.

The repository's ``examples/`` folder is not in the wheel; this writes the same kind of
package (an entry point, a registrar module, one small network builder and a test module
running segforge's contract kit) from templates shipped inside segforge.
"""
