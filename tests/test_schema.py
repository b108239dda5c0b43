"""schema.graphql is generated from the code; this fails when it drifts."""

from __future__ import annotations

from pathlib import Path

from app.schema import schema

SCHEMA_FILE = Path(__file__).parent.parent / "schema.graphql"


def test_schema_file_matches_the_code() -> None:
    exported = schema.as_str().strip()
    assert SCHEMA_FILE.read_text().strip() == exported, (
        "schema.graphql is stale: run `strawberry export-schema app.schema:schema "
        "--output schema.graphql`"
    )


def test_core_contract_names() -> None:
    sdl = schema.as_str()
    assert "recording(provider: Provider!, id: ID!): Recording" in sdl
    for enum_line in (
        "enum Provider {\n  TWILIO\n  SIGNALWIRE\n  BIRD\n}",
        "enum MediaFormat {\n  WAV\n  MP3\n}",
        "enum CallDirection {\n  INBOUND\n  OUTBOUND\n}",
    ):
        assert enum_line in sdl
