"""Provider webhooks: signed pushes from Twilio, SignalWire and Bird, turned into fresh cache
entries and ``RecordingEvent``s.

``POST /webhooks/twilio/{tenant}``, ``/webhooks/signalwire/{tenant}`` and
``/webhooks/bird/{tenant}`` (environment mode: the tenant ``default``) are the receivers
(``route``): each verifies the provider's signature (``signatures``) before anything else,
reads what the delivery announces (``notices``), acknowledges it at once and ignores a
repeat (``dedupe``: across replicas with Redis), then, after the answer, refreshes the
recording from its provider and publishes what it became (``work``, which documents the
status -> event type mapping). ``receivers`` holds who may push (one receiver per tenant and
provider with a signing key) and the work in flight, which the lifespan ends at shutdown.
"""

from app.webhooks.receivers import Webhooks
from app.webhooks.route import WebhookRoute

__all__ = ["WebhookRoute", "Webhooks"]
