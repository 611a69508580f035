"""One writer of the concurrency stress test: `python -m tests.kernel.stress_writer URL ID N`.

Appends N events: mostly single-event appends, some small batches, some to a
stream shared by all writers (retried on conflict), and some transactions that
hold still between insert and commit so that later appends commit first.
"""

import random
import sys
import time

from shared.errors import ConcurrencyError
from shared.events import NewEvent
from shared.store import EventStore


def main() -> None:
    url, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(writer)
    store = EventStore("stress", url, pool_size=2)
    written = 0
    while written < count:
        size = 1 if rng.random() < 0.8 else min(rng.randint(2, 5), count - written)
        events = [NewEvent("Stressed", {"writer": writer, "n": written + i}) for i in range(size)]
        shared_stream = rng.random() < 0.1
        stream = "shared" if shared_stream else f"w{writer}-{written}"
        while True:
            try:
                with store.transaction() as conn:
                    store.append(stream, events, None if shared_stream else 0, conn=conn)
                    if rng.random() < 0.1:
                        time.sleep(rng.random() * 0.02)  # commit late, after others
                break
            except ConcurrencyError:
                continue
        written += size
    store.dispose()


if __name__ == "__main__":
    main()
