"""Load simulator and benchmark: clients of any OCPP 1.6-J central system.

- ``simulator``: ``run.py sim``, options and worker processes.
- ``station``: one worker's simulated charge points on one event loop.
- ``bench``: ``run.py bench``, this central system against the peer in one run.
- ``ports``: free TCP ports for a system started by a test or the benchmark.

The server never imports this package, and this package imports nothing of
the server's (``actors``, ``storage``, ``metrics``): it speaks only OCPP-J.
"""
