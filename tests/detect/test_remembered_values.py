"""Per-distinct-value work remembered across batches: the internal-address test of ``contact_rows`` and the
command-line normalisation of scripting engines run once per distinct value for the life of a stream, and give
the answers of the stateless functions they replace, batch after batch (plain and dictionary columns)."""
from __future__ import annotations

from collections import Counter
from unittest import mock

import numpy as np
import pyarrow as pa

from raresketch import conform, default_catalog
from raresketch.detect import KeyResolver
from raresketch.detect import _baseline
from raresketch.detect._contacts import contact_rows
from raresketch.events._normalise import internal_ip_mask
from raresketch.simulate import Organisation

ADDRS = ["10.0.0.1", "52.216.0.1", None, "192.168.1.1", "fe80::1", "::ffff:10.0.0.1", "8.8.8.8", "100.64.0.1",
         "010.0.0.1", "not an ip", "", "127.0.0.1", "fd00::1", "2606:4700::1111"]


def test_internal_addresses_equal_the_mask_and_test_each_value_once():
    r = KeyResolver(default_catalog())
    calls = []
    real = internal_ip_mask

    def counting(v):
        calls.extend(v.to_pylist())
        return real(v)

    rng = np.random.default_rng(3)
    with mock.patch("raresketch.catalog._resolver.internal_ip_mask", counting):
        for b in range(6):
            vals = [ADDRS[i] for i in rng.integers(0, len(ADDRS), 40)]
            arr = pa.array(vals, pa.string())
            col = arr.dictionary_encode() if b % 2 else arr
            assert np.array_equal(r.internal_addresses(col), real(arr))
            assert np.array_equal(r.internal_addresses(pa.chunked_array([col[:7], col[7:]])), real(arr))
    assert len(calls) == len(set(calls))          # no value tested twice
    assert set(calls) <= set(ADDRS)


def test_contact_rows_with_remembered_answers_equal_stateless():
    r = KeyResolver(default_catalog())
    for b in Organisation(agents=20, days=3, seed=5).batches(3000):
        ev = conform(b, dictionary=True)
        s1, s2 = Counter(), Counter()
        a, c = contact_rows(ev, s1), contact_rows(ev, s2, r.internal_addresses)
        assert (a is None and c is None) or np.array_equal(a, c)
        assert s1 == s2


def test_command_lines_normalised_once_across_batches():
    batches = list(Organisation(agents=20, days=4, seed=1).batches(2000))
    fresh_keys = []
    for b in batches:                                  # reference: a new resolver per batch
        ev = conform(b)
        days = ev["@timestamp"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False) // 86_400_000_000
        fresh_keys.append(KeyResolver(default_catalog()).resolve(ev, days)[0].cmdline)
    r = KeyResolver(default_catalog())
    seen = []
    real = _baseline.normalize_command_line

    def counting(s):
        seen.append(s)
        return real(s)

    with mock.patch("raresketch.detect._keys.normalize_command_line", counting):
        for b, want in zip(batches, fresh_keys):
            ev = conform(b)
            days = ev["@timestamp"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False) // 86_400_000_000
            assert np.array_equal(r.resolve(ev, days)[0].cmdline, want)
    assert seen and len(seen) == len(set(seen))
    assert r.nbytes > 0
