"""The production-path suite (docs/production-path.md).

A package, so that its conftest and helper modules are imported as ``production.*`` and
never shadow ``tests/conftest.py`` (which other tests import as ``conftest``).
"""
