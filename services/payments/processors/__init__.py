"""Card processor adapters, and the choice among them (the PROCESSOR setting)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.payments.processors.base import Processor


def make_processor(config: Mapping[str, Any]) -> Processor:
    name = str(config.get("PROCESSOR") or "sandbox")
    if name == "sandbox":
        from services.payments.processors.sandbox import SandboxProcessor
        from services.payments.settings import webhook_secrets

        return SandboxProcessor(
            str(config.get("PROCESSOR_URL") or "http://localhost:8100"),
            str(config.get("PROCESSOR_API_KEY") or "sk_sandbox_muniportal"),
            webhook_secrets(config),
            tolerance=int(config.get("WEBHOOK_TOLERANCE_SECONDS") or 300),
        )
    raise ValueError(f"PROCESSOR {name!r} is not known (known: sandbox)")


__all__ = ["Processor", "make_processor"]
