"""One Recording shape: the cache codec and the GraphQL type both follow models.Recording.

The property test sets EVERY field of a Recording to a non-default value and uses every
member of every enum, then round-trips it through the memory cache and a real Redis: a
field added to the model is caught here until it is stored, read back and served.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from strawberry.types import get_object_definition

from app import models
from app.cache import (
    SHAPE,
    BoundedMemoryCache,
    RecordingCache,
    decode,
    encode,
    encode_not_found,
    shape_of,
)
from app.errors import RecordingNotFoundError
from app.models import CallDirection, MediaFormat, Money, Provider, Recording, RecordingStatus
from app.schema import schema, types
from app.settings import Settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent
FIELDS = dataclasses.fields(Recording)
# The enums a Recording holds; test_the_enums_are_all_listed keeps this list whole.
ENUMS: tuple[type[enum.Enum], ...] = (Provider, RecordingStatus, CallDirection, MediaFormat)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    # Module scope: hypothesis refuses function-scoped fixtures, which are not reset
    # between its examples (this one is a constant anyway).
    return "asyncio"


# --- strategies: every field non-default ---------------------------------------------

# Fixed offsets in whole minutes (RFC 3339's precision). Not zoneinfo zones: an aware
# datetime in a DST fold never equals one in another zone (PEP 495), which is not a
# codec question.
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Always microseconds; never fold=1 (meaningless at a fixed offset, and no parsed
# timestamp has it).
moments = st.datetimes(timezones=offsets).map(
    lambda moment: moment.replace(microsecond=moment.microsecond or 1, fold=0)
)
texts = st.text()
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)

# One strategy per field of models.Recording, each never drawing the field's default.
RECORDING_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "provider": st.sampled_from(Provider),
    "id": texts,
    "status": st.sampled_from(RecordingStatus),
    "provider_status": texts,
    "account_id": texts,
    "call_id": texts,
    "conference_id": texts,
    "source": texts,
    "direction": st.sampled_from(CallDirection),
    "from_": texts,
    "to": texts,
    "channels": st.integers(),
    "duration_seconds": st.integers(),
    "started_at": moments,
    "ended_at": moments,
    "created_at": moments,
    "updated_at": moments,
    "price": st.builds(
        Money,
        amount=st.decimals(allow_nan=False, allow_infinity=False),
        currency=texts,
    ),
    "error_code": texts,
    "media_formats": st.lists(st.sampled_from(MediaFormat), min_size=1).map(tuple),
    "raw": st.dictionaries(st.text(), json_values, min_size=1, max_size=6),
}
recordings = st.fixed_dictionaries(RECORDING_FIELDS).map(lambda values: Recording(**values))


def fields_at_default(recording: Recording) -> list[str]:
    """The fields of ``recording`` that hold their default value."""
    at_default = []
    for field in FIELDS:
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            continue  # required: no default to be at
        if getattr(recording, field.name) == default:
            at_default.append(field.name)
    return at_default


def every_member(base: Recording) -> list[Recording]:
    """Copies of ``base`` that, between them, hold every member of every enum in ENUMS."""

    def nth(members: type[enum.Enum], index: int) -> Any:
        listed = list(members)
        return listed[index % len(listed)]

    return [
        dataclasses.replace(
            base,
            provider=nth(Provider, index),
            status=nth(RecordingStatus, index),
            direction=nth(CallDirection, index),
            media_formats=(nth(MediaFormat, index), *base.media_formats),
        )
        for index in range(max(len(members) for members in ENUMS))
    ]


def enums_in(annotation: Any) -> set[type[enum.Enum]]:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {annotation}
    return {found for arg in typing.get_args(annotation) for found in enums_in(arg)}


def test_the_strategy_covers_every_field() -> None:
    assert set(RECORDING_FIELDS) == {field.name for field in FIELDS}, (
        "models.Recording and RECORDING_FIELDS disagree: give every field of the model a "
        "strategy that never draws its default"
    )


def test_the_enums_are_all_listed() -> None:
    hints = typing.get_type_hints(Recording)
    found = {members for hint in hints.values() for members in enums_in(hint)}
    assert found == set(ENUMS), "list every enum models.Recording holds in ENUMS (and every_member)"


# --- the round trip --------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(redis_proc: Any) -> Iterator[str]:
    """A database of the session's redis-server of its own, emptied when the module ends
    (other modules count the keys of database 0)."""
    yield f"redis://{redis_proc.host}:{redis_proc.port}/7"
    Redis(host=redis_proc.host, port=redis_proc.port, db=7).flushdb()


async def never_loaded() -> Recording:
    raise AssertionError("a cache miss: the entry just stored was not read back")


async def round_trip(cache: RecordingCache, recording: Recording, key: str) -> Recording:
    await cache.store(key, recording)
    return await cache.get_or_load(key, never_loaded)


@settings(deadline=None)  # loopback Redis on a busy machine: no per-example deadline
@given(base=recordings)
async def test_every_field_survives_the_memory_and_redis_caches(
    base: Recording, redis_url: str
) -> None:
    assert fields_at_default(base) == [], "the strategy left these fields at their default"
    variants = every_member(base)
    for members in ENUMS:
        held = {
            value
            for variant in variants
            for field in FIELDS
            for value in (
                getattr(variant, field.name)
                if isinstance(getattr(variant, field.name), tuple)
                else (getattr(variant, field.name),)
            )
            if isinstance(value, members)
        }
        assert held == set(members), f"not every {members.__name__} is exercised"
    assert all(fields_at_default(variant) == [] for variant in variants)

    memory = RecordingCache.from_settings(Settings.from_env({}).cache)
    # A second per Redis call (not the production 0.1 s): a busy machine must not turn a read
    # into a bypass, which this test would take for an entry that did not survive.
    env = {"GATEWAY_CACHE_URL": redis_url, "GATEWAY_CACHE_TIMEOUT": "1"}
    redis = RecordingCache.from_settings(Settings.from_env(env).cache)
    try:
        for index, recording in enumerate(variants):
            key = RecordingCache.key(
                RecordingCache.scoped(recording.provider, "property-test"), str(index)
            )
            for cache in (memory, redis):
                restored = await round_trip(cache, recording, key)
                assert restored == recording
                # Unchanged to the letter, too: UTC offsets, Decimal exponents, -0.0.
                assert repr(restored) == repr(recording)
    finally:
        await redis.close()
        await memory.close()


def test_the_stored_fields_are_the_models_fields() -> None:
    """The codec reads the model: its stored keys are the dataclass's own field names."""
    stored = json.loads(encode(Recording(Provider.TWILIO, "RE1", RecordingStatus.QUEUED, "q")))
    assert list(stored["recording"]) == [field.name for field in FIELDS]


def test_not_found_round_trips() -> None:
    for provider in (Provider.BIRD, None):
        decoded = decode(encode_not_found(RecordingNotFoundError("gone", provider=provider)))
        assert isinstance(decoded, RecordingNotFoundError)
        assert (decoded.message, decoded.provider) == ("gone", provider)


# --- unreadable entries and the shape in the key -----------------------------------------

V1_ENTRY = json.dumps(
    {
        "provider": "TWILIO",
        "id": "RE1",
        "status": "COMPLETED",
        "providerStatus": "completed",
        "mediaFormats": ["MP3"],
        "raw": {},
    }
)


@pytest.mark.parametrize(
    "stored",
    [
        "not json {",
        V1_ENTRY,  # what FORMAT_VERSION 1 wrote
        '{"recording": {"provider": "acme", "id": "x", "status": "queued"}}',
        "{}",
        '{"surprise": 1}',
        "[]",
    ],
)
async def test_an_unreadable_entry_is_a_miss_with_a_warning(
    stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.cache")
    backend = BoundedMemoryCache(10)
    cache = RecordingCache(backend)
    key = RecordingCache.key(RecordingCache.scoped(Provider.TWILIO, "tenant"), "RE1")
    await backend.set(key, stored)
    fresh = Recording(Provider.TWILIO, "RE1", RecordingStatus.COMPLETED, "completed")

    async def load() -> Recording:
        return fresh

    assert await cache.get_or_load(key, load) is fresh
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.cache"]
    assert len(warnings) == 1 and warnings[0].startswith("ignoring an unreadable cache entry")
    assert await cache.get_or_load(key, never_loaded) == fresh  # and the fresh one replaced it


def test_a_new_field_changes_the_key() -> None:
    """Entries written before a field was added are never read: they would decode with the
    new field silently at its default."""
    extended = dataclasses.make_dataclass(
        "Recording",
        [("transcript", str | None, dataclasses.field(default=None))],
        bases=(Recording,),
        frozen=True,
    )
    entry = msgspec.defstruct(
        "_Entry",
        [("recording", extended | None, None), ("not_found", Any, None)],
        omit_defaults=True,
        forbid_unknown_fields=True,
    )
    assert shape_of(entry) != SHAPE
    with_doc = msgspec.defstruct("_Entry", [("recording", Recording | None, None)])
    with_doc.__doc__ = "another docstring"
    assert shape_of(with_doc) == shape_of(
        msgspec.defstruct("_Entry", [("recording", Recording | None, None)])
    )


def test_a_new_field_survives_the_codec() -> None:
    extended = dataclasses.make_dataclass(
        "Extended",
        [("transcript", str | None, dataclasses.field(default=None))],
        bases=(Recording,),
        frozen=True,
    )
    recording = extended(
        Provider.BIRD, "b", RecordingStatus.COMPLETED, "available", transcript="hi"
    )
    assert msgspec.json.decode(msgspec.json.encode(recording), type=extended) == recording


def test_every_replica_computes_the_same_key() -> None:
    """The shape fingerprint is part of shared Redis keys: it must not vary by process."""
    script = "from app.cache import SHAPE; print(SHAPE)"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == SHAPE


# --- the GraphQL type follows the model ----------------------------------------------------


def introspected(type_name: str) -> dict[str, Any]:
    """The GraphQL fields of ``type_name`` as the running schema serves them."""
    query = "query($n: String!) { __type(name: $n) { fields { name type { kind } } } }"
    result = schema.execute_sync(query, variable_values={"n": type_name})
    assert result.errors is None and result.data is not None
    return {field["name"]: field["type"]["kind"] for field in result.data["__type"]["fields"]}


def graphql_names(graphql_type: type) -> dict[str, str]:
    """Python field name -> GraphQL field name, for the fields of a Strawberry type."""
    definition = get_object_definition(graphql_type, strict=True)
    converter = schema.config.name_converter
    return {field.python_name: converter.get_graphql_name(field) for field in definition.fields}


@pytest.mark.parametrize(
    ("model", "graphql_type", "excluded"),
    [
        (models.Recording, types.Recording, types.NOT_EXPOSED),
        (models.Money, types.Money, frozenset()),
    ],
)
def test_every_model_field_is_served_with_its_nullability(
    model: type, graphql_type: type, excluded: frozenset[str]
) -> None:
    served = introspected(get_object_definition(graphql_type, strict=True).name)
    names = graphql_names(graphql_type)
    hints = typing.get_type_hints(model)
    missing = []
    for field in dataclasses.fields(model):
        if field.name in excluded:
            continue
        name = names.get(field.name)
        if name not in served:
            missing.append(field.name)
            continue
        nullable = type(None) in typing.get_args(hints[field.name])
        assert (served[name] != "NON_NULL") == nullable, f"{field.name}: nullability differs"
    assert not missing, (
        f"{model.__name__} fields {missing} are not in the GraphQL {graphql_type.__name__} "
        "type: add them to app/schema/types.py (and schema.graphql), or to NOT_EXPOSED"
    )
    assert excluded <= {field.name for field in dataclasses.fields(model)}


def test_from_model_serves_each_value() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-3)))
    recording = Recording(
        provider=Provider.BIRD,
        id="b",
        status=RecordingStatus.COMPLETED,
        provider_status="available",
        started_at=moment,
        price=Money(Decimal("0.00250"), "USD"),
        media_formats=(MediaFormat.MP3, MediaFormat.WAV),
        raw={"nested": [1, {"x": None}]},
    )
    served = types.Recording.from_model(recording)
    assert served.model is recording
    assert (served.id, served.started_at) == ("b", moment)
    assert (served.price.amount, served.price.currency) == (Decimal("0.00250"), "USD")  # type: ignore[union-attr]
    assert served.media_formats == [MediaFormat.MP3, MediaFormat.WAV]
    raw: Any = served.raw  # JSON, for GraphQL: a plain dict underneath
    assert raw == {"nested": [1, {"x": None}]} and type(raw) is dict
    for field in FIELDS:
        if field.name not in {"id", "price", "media_formats", "raw"}:
            assert getattr(served, field.name) == getattr(recording, field.name), field.name
