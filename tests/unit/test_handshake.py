"""The WebSocket opening handshake decisions (gateway/handshake.py)."""

from __future__ import annotations

import base64
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.handshake import (
    MAX_IDENTITY,
    BadIdentity,
    basic_credentials,
    identity_from_path,
    select_subprotocol,
)

FUZZ = settings(max_examples=200, deadline=None)


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/CP1", "CP1"),
        ("/ocpp/CP1", "CP1"),
        ("/ocpp/v16/CP1", "CP1"),
        ("/ocpp/CP%201", "CP 1"),
        ("/CP1/", "CP1"),
        ("/CP1?x=1", "CP1"),
        ("/ocpp/CP1?password=x&y=%2F", "CP1"),
        ("/CP1#fragment", "CP1"),
        ("/%C3%A9t%C3%A9", "été"),
        ("/100%25", "100%"),
    ],
)
def test_the_identity_is_the_last_path_segment_percent_decoded(path: str, identity: str) -> None:
    assert identity_from_path(path) == identity


@pytest.mark.parametrize("path", ["", "/", "//", "/?x=1", "/?CP1", "?CP1"])
def test_a_path_without_an_identity_has_none(path: str) -> None:
    assert identity_from_path(path) is None


@pytest.mark.parametrize("path", ["/CP%001", "/CP%0A1", "/%09", "/CP%1F"])
def test_an_identity_with_control_characters_is_refused(path: str) -> None:
    with pytest.raises(BadIdentity, match="control characters"):
        identity_from_path(path)


def test_an_identity_of_the_maximum_length_is_accepted_and_one_longer_is_refused() -> None:
    assert MAX_IDENTITY == 48
    assert identity_from_path("/" + "x" * MAX_IDENTITY) == "x" * MAX_IDENTITY
    with pytest.raises(BadIdentity, match="longer than 48"):
        identity_from_path("/" + "x" * (MAX_IDENTITY + 1))


@pytest.mark.parametrize("path", ["/CP%2F1", "/ocpp/a%2fb"])
def test_an_identity_with_a_slash_is_refused(path: str) -> None:
    with pytest.raises(BadIdentity, match="'/'"):
        identity_from_path(path)


def test_a_percent_sign_not_followed_by_hex_is_kept_literally() -> None:
    assert identity_from_path("/CP%ZZ") == "CP%ZZ"


@pytest.mark.parametrize("path", ["/%FF", "/CP%C3", "/%80abc"])
def test_an_identity_that_is_not_utf8_after_decoding_is_refused(path: str) -> None:
    with pytest.raises(BadIdentity, match="UTF-8"):
        identity_from_path(path)


@pytest.mark.parametrize("path", ["/CP%7F", "/CP%C2%85", "/CP%C2%9F"])
def test_an_identity_with_del_or_c1_control_characters_is_refused(path: str) -> None:
    with pytest.raises(BadIdentity):
        identity_from_path(path)


@FUZZ
@given(st.text())
@example("/%FF")
@example("/%C2%85")
def test_identity_from_path_raises_nothing_but_bad_identity_on_arbitrary_text(path: str) -> None:
    try:
        identity = identity_from_path(path)
    except BadIdentity:
        return
    assert identity is None or 0 < len(identity) <= MAX_IDENTITY
    assert identity is None or "/" not in identity
    assert identity is None or not any(unicodedata.category(c) == "Cc" for c in identity)


@FUZZ
@given(
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="%/?#"),
        min_size=1,
        max_size=MAX_IDENTITY,
    )
)
def test_an_identity_without_escapes_or_controls_round_trips_under_a_prefix(identity: str) -> None:
    assert identity_from_path("/ocpp/" + identity) == identity


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp1.6"], "ocpp1.6"),
        (["ocpp0.1", "ocpp1.6"], "ocpp1.6"),
        (["ocpp2.0.1", "ocpp1.6", "ocpp1.5"], "ocpp1.6"),
        (["ocpp0.1"], None),
        (["OCPP1.6"], None),
        (["ocpp1.6j"], None),
        ([], None),
    ],
)
def test_select_subprotocol_chooses_ocpp16_only_when_offered(
    offered: list[str], chosen: str | None
) -> None:
    assert select_subprotocol(offered) == chosen


def test_basic_credentials_decodes_user_and_password() -> None:
    assert basic_credentials(basic("CP1:secret")) == ("CP1", "secret")


def test_basic_credentials_scheme_is_case_insensitive_and_spaces_are_tolerated() -> None:
    assert basic_credentials("basic " + basic("CP1:pw")[6:]) == ("CP1", "pw")
    assert basic_credentials("  BASIC   " + basic("CP1:pw")[6:] + " ") == ("CP1", "pw")


def test_basic_credentials_keeps_colons_in_the_password() -> None:
    assert basic_credentials(basic("CP1:a:b:c")) == ("CP1", "a:b:c")


def test_basic_credentials_allows_an_empty_user_and_password() -> None:
    assert basic_credentials(basic(":")) == ("", "")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer " + basic("CP1:pw")[6:],
        "Digest " + basic("CP1:pw")[6:],
        "Basic !!!not-base64!!!",
        "Basic Q1AxOnB",  # truncated
        basic("no-colon"),
        "Basic " + base64.b64encode(b"\xff\xfe:pw").decode(),  # not UTF-8
    ],
)
def test_basic_credentials_refuses_anything_but_a_valid_basic_header(header: str | None) -> None:
    assert basic_credentials(header) is None


@FUZZ
@given(st.text())
def test_basic_credentials_never_raises(header: str) -> None:
    result = basic_credentials(header)
    assert result is None or isinstance(result, tuple)


@FUZZ
@given(
    st.text(st.characters(codec="utf-8", exclude_characters=":"), max_size=30),
    st.text(st.characters(codec="utf-8"), max_size=30),
)
def test_basic_credentials_round_trip(user: str, password: str) -> None:
    assert basic_credentials(basic(f"{user}:{password}")) == (user, password)
