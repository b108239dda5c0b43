"""Settings of the sandbox providers; the defaults are the demo credentials."""

from __future__ import annotations

from dataclasses import dataclass, field

DEMO_TWILIO_ACCOUNT_SID = "AC0f3e5d7c9b1a2e4d6c8b0a1f3e5d7c9b"
DEMO_TWILIO_AUTH_TOKEN = "5e1c0b9d8a7f6e5d4c3b2a1908f7e6d5"
DEMO_TWILIO_API_KEY = "SK7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b"
DEMO_TWILIO_API_SECRET = "dEm0sEcReTfOrThEtWiLiOsAnDbOx0001"
DEMO_SIGNALWIRE_PROJECT_ID = "720796a0-8ee9-4350-83bd-2d07a3121f1e"
DEMO_SIGNALWIRE_API_TOKEN = "PT3f9b1d7e5c3a1f9e7d5c3b1a9f7e5d3c1b9a7f5e3d1c9b"
DEMO_BIRD_WORKSPACE_ID = "8bc02f53-87ac-48d2-b4fd-c2cf856a305f"
DEMO_BIRD_ACCESS_KEY = "demo-bird-access-key-5b74ee9e9d45473a82cdf1f7feea6bbd"

PROVIDERS = ("twilio", "signalwire", "bird")


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """What the three sandbox providers accept and serve.

    The defaults (`DEMO`) are the credentials of demo mode. Secrets are left out of `repr()`.
    """

    twilio_account_sid: str = DEMO_TWILIO_ACCOUNT_SID
    twilio_auth_token: str = field(default=DEMO_TWILIO_AUTH_TOKEN, repr=False)
    twilio_api_key: str = DEMO_TWILIO_API_KEY
    twilio_api_secret: str = field(default=DEMO_TWILIO_API_SECRET, repr=False)
    signalwire_project_id: str = DEMO_SIGNALWIRE_PROJECT_ID
    signalwire_api_token: str = field(default=DEMO_SIGNALWIRE_API_TOKEN, repr=False)
    bird_workspace_id: str = DEMO_BIRD_WORKSPACE_ID
    bird_access_key: str = field(default=DEMO_BIRD_ACCESS_KEY, repr=False)
    recordings_per_provider: int = 36
    seed: int = 2026
    latency: float = 0.0
    honor_range: bool = True
    twilio_media_auth: bool = True
    presign_ttl: int = 600
    s3_base_url: str | None = None

    def __post_init__(self) -> None:
        if self.recordings_per_provider < 0:
            raise ValueError("recordings_per_provider must be >= 0")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        if self.presign_ttl <= 0:
            raise ValueError("presign_ttl must be > 0")
        if self.s3_base_url is not None:
            object.__setattr__(self, "s3_base_url", self.s3_base_url.rstrip("/"))


DEMO = SandboxConfig()
