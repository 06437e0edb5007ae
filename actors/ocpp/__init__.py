"""The OCPP 1.6 logic of the central system.

Nothing here opens a socket, starts a thread, writes to storage or metrics,
reads the clock on its own or talks to another actor (``tests/unit/test_layout.py``
checks the imports); the station host (``actors.host``) feeds it text and
``now`` and carries out what it returns.

- ``machine``: the station machine, one charge point's session: events in, a ``Step`` out.
- ``effects``: the effects it returns (writes, metrics, frames, closes, messages,
  call timeouts) and ``Reads``, the read-only view of storage it is given.
- ``ocppj``, ``schemacheck``: OCPP-J framing and schema validation.
- ``calls``: the queue of CALLs the central system sends to one charge point.
- ``core``: the handlers of charge-point-initiated CALLs (all profiles).
- ``bookkeeping``: what the central system remembers around the CALLs it sends.
- ``authorization``, ``reservations``, ``local_list``, ``smart_charging``,
  ``smart_charging_composite``: the decisions and state tables of each profile.
"""
