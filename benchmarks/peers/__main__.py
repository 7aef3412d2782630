"""``python -m benchmarks.peers``: see :mod:`benchmarks.peers.timing`."""

from benchmarks.peers.timing import main

main()
