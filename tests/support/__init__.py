"""Shared non-test code of the test suite (``tests/`` is put on ``sys.path`` by ``tests/conftest.py``):

- ``reference``: the exact oracle, a plain-dict reading of docs/DETECTORS.md, independent of ``raresketch.detect``;
- ``engine_adapter``: ``raresketch.Engine`` behind the reference's interface (alert dicts);
- ``scenarios``: hand-written events (process profiles, rows, tables, background traffic);
- ``helpers``: deterministic workloads.
"""
