"""The control script (``run.py ctl`` / ``csmsctl``): a client of the actor system.

- ``client``: connects to the admin port, asks the registry, prints results.
- ``commands``: the named commands, their arguments and the payloads they become.
- ``render``: the output for people (tables and ``key: value`` lines; never JSON).

No actor imports this package; the actors and the client share only
``actors.messages`` and ``actors.errors``.
"""
