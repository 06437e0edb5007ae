"""The OCPP 1.6 logic of the central system.

Nothing here opens a socket, starts a thread, reads the clock on its own or
talks to another actor; the station host (``actors.host``) feeds it text and
``now`` and carries out what it returns.

- ``ocppj``, ``schemacheck``: OCPP-J framing and schema validation.
- ``calls``: the queue of CALLs the central system sends to one charge point.
- ``core``: the handlers of charge-point-initiated CALLs (all profiles).
- ``bookkeeping``: what the central system remembers around the CALLs it sends.
- ``authorization``, ``reservations``, ``local_list``, ``smart_charging``,
  ``smart_charging_composite``: the decisions and state tables of each profile.
"""
