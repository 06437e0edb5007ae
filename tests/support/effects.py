"""Carry out a handler's ``Write`` effects on a real Store, as the station host does."""

from __future__ import annotations

from actors.ocpp.core import Context
from actors.ocpp.effects import Effect, Write
from storage import Store


def carry_out(store: Store, ctx: Context) -> list[Effect]:
    """Run ``ctx``'s writes on ``store`` in order and drop them; the other effects stay and are returned."""
    for effect in [e for e in ctx.effects if isinstance(e, Write)]:
        getattr(store, effect.op)(*effect.args, **effect.kwargs)
    ctx.effects[:] = [e for e in ctx.effects if not isinstance(e, Write)]
    return ctx.effects
