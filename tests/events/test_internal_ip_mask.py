"""The vectorised internal-address check equals the scalar one, value for value."""
import ipaddress
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raresketch.events import is_internal_ip
from raresketch.events._normalise import internal_ip_mask

EDGES = ["0.0.0.0", "0.0.0.1", "0.255.255.255", "1.0.0.0", "9.255.255.255", "10.0.0.0", "10.255.255.255",
         "11.0.0.0", "100.63.255.255", "100.64.0.0", "100.127.255.255", "100.128.0.0", "126.255.255.255",
         "127.0.0.1", "128.0.0.0", "169.253.255.255", "169.254.0.0", "169.254.255.255", "169.255.0.0",
         "172.15.255.255", "172.16.0.0", "172.31.255.255", "172.32.0.0", "192.0.0.0", "192.0.0.7", "192.0.0.8",
         "192.0.0.9", "192.0.0.10", "192.0.0.170", "192.0.0.171", "192.0.0.172", "192.0.2.1", "192.0.3.0",
         "192.167.255.255", "192.168.1.1", "192.169.0.0", "198.17.255.255", "198.18.0.0", "198.19.255.255",
         "198.20.0.0", "198.51.100.7", "203.0.113.9", "223.255.255.255", "224.0.0.1", "239.255.255.255",
         "240.0.0.0", "255.255.255.254", "255.255.255.255", "8.8.8.8", "52.95.1.2",
         "::1", "fe80::1", "fd00::1", "2001:db8::1", "2606:4700::1111", "::ffff:10.0.0.1", "ff02::1", "::",
         "010.0.0.1", "10.0.0.1:443", "not an ip", "", None]


def _expected(vals):
    return np.array([is_internal_ip(v) for v in vals], bool)


def test_edges_equal_scalar():
    assert (internal_ip_mask(pa.array(EDGES, pa.string())) == _expected(EDGES)).all()


def test_random_equal_scalar_plain_dictionary_chunked():
    rng = random.Random(7)
    special = [n for n in ipaddress.IPv4Address._constants._private_networks]
    vals = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(5000)]
    for net in special:          # addresses inside and just around every special network
        lo, hi = int(net.network_address), int(net.broadcast_address)
        vals += [str(ipaddress.IPv4Address(max(0, min(2**32 - 1, x)))) for x in (lo - 1, lo, hi, hi + 1)]
    vals += EDGES * 3
    rng.shuffle(vals)
    want = _expected(vals)
    arr = pa.array(vals, pa.string())
    assert (internal_ip_mask(arr) == want).all()
    assert (internal_ip_mask(pc.dictionary_encode(arr)) == want).all()
    assert (internal_ip_mask(pa.chunked_array([arr[:100], arr[100:]])) == want).all()


def test_empty_and_all_null():
    assert internal_ip_mask(pa.array([], pa.string())).shape == (0,)
    assert not internal_ip_mask(pa.array([None, None], pa.string())).any()
