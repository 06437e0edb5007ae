"""The station host: one process serving many charge points (ARCHITECTURE.md, "The runtime").

- ``actor``: ``StationHostActor``, the host's Thespian side (control plane).
- ``loop``: the event loop thread: accept, WebSocket upgrade, admission, frames.
- ``worker``: the writer thread: station actors, one event at a time, group commit.
- ``station``: the station actor: a ``StationMachine`` and the glue that carries out its effects.

Other packages use ``StationHostActor`` only.
"""
