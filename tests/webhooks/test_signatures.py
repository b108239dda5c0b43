"""The providers' signature schemes against their published examples, the recorded
deliveries, and an implementation that is not ours (openssl's)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from urllib.parse import parse_qsl

import pytest

from app.sandbox import DEMO_TWILIO_AUTH_TOKEN
from app.webhooks.signatures import (
    BIRD_TOLERANCE,
    bird_signature,
    bird_valid,
    twilio_signature,
    twilio_valid,
)
from tests.webhooks.support import BIRD_RECORDED_AT, recorded

# twilio-python's tests/unit/test_request_validator.py (https://github.com/twilio/twilio-python):
# Twilio's documented example and its variants, computed by Twilio's own library.
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]


def test_twilios_documented_example() -> None:
    example = recorded("twilio", "docs_signature_example")
    params = parse_qsl(example.body.decode())
    assert example.key == "12345"
    assert twilio_signature("12345", example.url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_valid("12345", example.url, params, example.headers["X-Twilio-Signature"])


def test_twilio_names_sent_twice_sign_their_distinct_values_sorted() -> None:
    params = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert twilio_signature("12345", DOC_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (DOC_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),  # signed with :443
        (DOC_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),  # with :80
        (DOC_URL.replace(".com", ".com:443"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),  # without
    ],
)
def test_twilio_urls_signed_with_or_without_their_default_port(url: str, signature: str) -> None:
    assert twilio_valid("12345", url, DOC_PARAMS, signature)


def test_twilio_another_port_is_not_dropped() -> None:
    assert not twilio_valid(
        "12345", DOC_URL.replace(".com", ".com:1234"), DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )


def test_twilio_json_bodies_are_signed_through_their_hash_in_the_url() -> None:
    body = b'{"property": "value", "boolean": true}'
    url = DOC_URL + "&bodySHA256=" + hashlib.sha256(body).hexdigest()
    assert twilio_valid("12345", url, [], "a9nBmqA0ju/hNViExpshrM61xv4=", body)
    assert not twilio_valid("12345", url, [], "a9nBmqA0ju/hNViExpshrM61xv4=", body + b" ")


@pytest.mark.parametrize(
    ("provider", "name"),
    [
        ("twilio", "recording_in_progress"),
        ("twilio", "recording_completed"),
        ("twilio", "recording_absent"),
        ("twilio", "transcription_completed"),
        ("twilio", "call_status"),
        ("signalwire", "recording_in_progress"),
        ("signalwire", "recording_completed"),
        ("signalwire", "transcription_completed"),
    ],
)
def test_recorded_laml_deliveries_verify_and_any_change_breaks_them(
    provider: str, name: str
) -> None:
    delivery = recorded(provider, name)
    key = delivery.key if provider == "signalwire" else DEMO_TWILIO_AUTH_TOKEN
    params = parse_qsl(delivery.body.decode())
    signature = delivery.headers["X-Twilio-Signature"]
    assert twilio_valid(key, delivery.url, params, signature)
    tampered = [(params[0][0], params[0][1] + "0"), *params[1:]]
    assert not twilio_valid(key, delivery.url, tampered, signature)
    assert not twilio_valid(key, delivery.url + "?x=1", params, signature)
    assert not twilio_valid(key + "x", delivery.url, params, signature)


@pytest.mark.parametrize(
    "name", ["recording_available", "transcription_completed", "voice_outbound_completed"]
)
def test_recorded_bird_deliveries_verify_and_any_change_breaks_them(name: str) -> None:
    d = recorded("bird", name)
    stamp = d.headers["MessageBird-Request-Timestamp"]
    signature = d.headers["MessageBird-Signature"]
    now = float(BIRD_RECORDED_AT)
    assert bird_valid(d.key, d.url, d.body, signature, stamp, now)
    assert not bird_valid(d.key, d.url, d.body + b" ", signature, stamp, now)
    assert not bird_valid(d.key, d.url + "/", d.body, signature, stamp, now)
    assert not bird_valid(d.key, d.url, d.body, signature, str(int(stamp) + 1), now)
    assert not bird_valid(d.key, d.url, d.body, "not base64!", stamp, now)


def test_bird_timestamps_more_than_five_minutes_away_are_refused() -> None:
    d = recorded("bird", "recording_available")
    stamp, signature = (
        d.headers["MessageBird-Request-Timestamp"],
        d.headers["MessageBird-Signature"],
    )
    assert BIRD_TOLERANCE == 300
    for now in (BIRD_RECORDED_AT - 300, BIRD_RECORDED_AT + 300):
        assert bird_valid(d.key, d.url, d.body, signature, stamp, float(now))
    for now in (BIRD_RECORDED_AT - 301, BIRD_RECORDED_AT + 301):
        assert not bird_valid(d.key, d.url, d.body, signature, stamp, float(now))
    assert not bird_valid(d.key, d.url, d.body, signature, "", float(BIRD_RECORDED_AT))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_bird_signature_matches_openssls_hmac() -> None:
    d = recorded("bird", "recording_available")
    stamp = d.headers["MessageBird-Request-Timestamp"]
    signed = f"{stamp}\n{d.url}\n".encode() + hashlib.sha256(d.body).digest()
    made = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", d.key, "-binary"],
        input=signed,
        capture_output=True,
        check=True,
    )
    assert base64.b64encode(made.stdout).decode() == d.headers["MessageBird-Signature"]
    assert bird_signature(d.key, stamp, d.url, d.body) == d.headers["MessageBird-Signature"]
