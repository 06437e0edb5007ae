"""Every message between actors pickles (Thespian sends them across processes) and is frozen."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import typing
from typing import Any

import pytest

from actors import exporter, messages
from actors.settings import Settings

SETTINGS = Settings(db="/tmp/x.db", data_transfer_vendors=(("V", ("m1",)),))


def message_classes(module: Any) -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
    ]


MESSAGES = message_classes(messages) + [
    cls for cls in message_classes(exporter) if cls.__name__ in exporter.__all__
]

SAMPLES: dict[Any, Any] = {
    Settings: SETTINGS,
    str: "CP-ü 1",
    int: 42,
    float: 1.5,
    bool: True,
    Any: ("an", "address"),
    dict[str, Any]: {"idTag": "T", "nested": {"list": [1, 2.5, None]}},
    dict[str, Any] | None: {"status": "Accepted"},
    str | None: "text",
    tuple[str, ...]: ("CP1", "CP 2"),
    tuple[Any, ...]: (("an", "address"), ("another", "address")),
    tuple[tuple[str, int], ...]: (("CP1", 7), ("CP 2", 8)),
}


def sample(cls: type) -> Any:
    hints = typing.get_type_hints(cls, vars(messages) | vars(exporter))
    values = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        assert hint in SAMPLES, f"{cls.__name__}.{f.name}: no sample for {hint}"
        values[f.name] = SAMPLES[hint]
    return cls(**values)


def test_the_message_modules_define_messages() -> None:
    names = {cls.__name__ for cls in MESSAGES}
    assert {"SendCall", "CallReply", "ScheduleTimer", "TimerFired", "StartExporter"} <= names
    assert len(MESSAGES) >= 25


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_every_message_round_trips_through_pickle_equal(cls: type) -> None:
    message = sample(cls)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(message, protocol=protocol))
        assert copy == message
        assert type(copy) is cls


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_every_message_is_frozen(cls: type) -> None:
    message = sample(cls)
    for f in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(message, f.name, None)


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_every_message_with_defaults_pickles_equal(cls: type) -> None:
    required = {
        f.name: sample(cls).__dict__[f.name]
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    message = cls(**required)
    assert pickle.loads(pickle.dumps(message)) == message


def test_settings_pickle_equal_and_are_frozen() -> None:
    assert pickle.loads(pickle.dumps(SETTINGS)) == SETTINGS
    with pytest.raises(dataclasses.FrozenInstanceError):
        SETTINGS.port = 1  # type: ignore[misc]
