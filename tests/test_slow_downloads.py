"""A slow reader is not an idle client: a download that lasts longer than the
idle timeout must still finish, on every model, as long as bytes keep moving.

(Regression: socket.sendall() with a timeout limits the whole transfer since
Python 3.5, so the blocking models once cut off downloads after idle_timeout.)
"""

import pytest

from labserver.experiments import download_slowly
from labserver.servers import MODELS


@pytest.mark.parametrize("name", list(MODELS))
def test_a_download_slower_than_the_idle_timeout_completes(name):
    # 10 MB: more than loopback socket buffers hold, so the server really waits on the reader.
    size, rate = 10_000_000, 4_000_000  # 2.5 s of transfer against a 0.5 s idle timeout
    with MODELS[name](idle_timeout=0.5) as server:
        received, seconds = download_slowly(server.url, f"/bytes/{size}", rate=rate)
    assert received == size, f"{name} cut the download off after {received} of {size} bytes ({seconds:.1f} s)"
    assert seconds >= 0.9 * size / rate
