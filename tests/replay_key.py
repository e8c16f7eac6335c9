"""The fixed key the recorded workflow histories in tests/histories/ are encrypted with.

For tests only, and committed on purpose: the histories hold made-up engagements, and the replay test
must decode what the recorder wrote years earlier. Never use it as a real encryption key.
"""

from __future__ import annotations

import base64

from temporalio.converter import DataConverter

from core.crypto import Cipher
from workflows.client import data_converter

# base64 of b"portico-replay-test-key-32-bytes"
HISTORY_KEY = "cG9ydGljby1yZXBsYXktdGVzdC1rZXktMzItYnl0ZXM="


def history_converter() -> DataConverter:
    """The production converter (pydantic + AES-GCM payload codec) under the fixed test key."""
    return data_converter(Cipher(base64.urlsafe_b64decode(HISTORY_KEY)))
