"""Faithful stand-ins for Twilio, SignalWire and Bird (plus Bird's S3 links), as one ASGI app.

Used by the gateway's tests and as the product's demo mode:

    app = create_sandbox_app(SandboxConfig(recordings_per_provider=50))
    sandbox: Sandbox = app.state.sandbox
    sandbox.faults.inject("twilio", 429, retry_after=2)
    sandbox.faults.wire("bird", "trickle-body")  # played by a WireFront (app.sandbox.wire)

Each provider serves `SandboxConfig.accounts_per_provider` accounts (default 2) with recordings
of the same shape in each; `sandbox.accounts(provider)` lists them with their credentials
(`SandboxAccount`), index 0 being the demo's.

The providers push too: `sandbox.lifecycle` moves new recordings through their states
(`await sandbox.lifecycle.step()` in tests, every `SandboxConfig.lifecycle_interval` seconds
while the app runs) and each change is called back, signed as the provider signs it, to the
account's URL (`SandboxConfig.callback_urls`, `sandbox.set_callback_url`); `sandbox.callbacks`
logs every attempt (`app.sandbox.lifecycle`, `app.sandbox.callbacks`, `app.sandbox.delivery`).
"""

from __future__ import annotations

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import (
    DEMO,
    DEMO_BIRD_ACCESS_KEY,
    DEMO_BIRD_SIGNING_KEY,
    DEMO_BIRD_WORKSPACE_ID,
    DEMO_SIGNALWIRE_API_TOKEN,
    DEMO_SIGNALWIRE_PROJECT_ID,
    DEMO_SIGNALWIRE_SIGNING_KEY,
    DEMO_TWILIO_ACCOUNT_SID,
    DEMO_TWILIO_API_KEY,
    DEMO_TWILIO_API_SECRET,
    DEMO_TWILIO_AUTH_TOKEN,
    SandboxAccount,
    SandboxConfig,
)
from app.sandbox.data import Dataset, SandboxRecording
from app.sandbox.delivery import SentCallback
from app.sandbox.faults import Fault, Faults, WireFault
from app.sandbox.lifecycle import Lifecycle
from app.sandbox.middleware import SeenRequest
from app.sandbox.seeding import build_dataset
from app.sandbox.state import Sandbox

__all__ = [
    "DEMO",
    "DEMO_BIRD_ACCESS_KEY",
    "DEMO_BIRD_SIGNING_KEY",
    "DEMO_BIRD_WORKSPACE_ID",
    "DEMO_SIGNALWIRE_API_TOKEN",
    "DEMO_SIGNALWIRE_PROJECT_ID",
    "DEMO_SIGNALWIRE_SIGNING_KEY",
    "DEMO_TWILIO_ACCOUNT_SID",
    "DEMO_TWILIO_API_KEY",
    "DEMO_TWILIO_API_SECRET",
    "DEMO_TWILIO_AUTH_TOKEN",
    "Dataset",
    "Fault",
    "Faults",
    "Lifecycle",
    "Sandbox",
    "SandboxAccount",
    "SandboxConfig",
    "SandboxRecording",
    "SeenRequest",
    "SentCallback",
    "WireFault",
    "build_dataset",
    "create_sandbox_app",
]
