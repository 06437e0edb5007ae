"""Everything that depends on Thespian's internals or threading rules, in one place.

- ``pin``: the Thespian version these adapters were written against; each
  adapter refuses to install on another one.
- ``loopback``: every actor socket bound to the loopback interface.
- ``peercred``: every accepted actor connection checked for our own user.
- ``bridge``: hand-over from a host's other threads to its actor thread
  (messages and log records).

The rest of the code base uses only ``thespian.actors``.
"""
