"""Run by tests/test_core/test_migrations.py under the FIRST RELEASE's code (commit 6be0d67, not this tree's):
that release creates its tables and fills them with a completed joint engagement (signed by both
spouses, sealed, with chat, audit and outbox rows) through its own models, activities and store.

    PYTHONPATH=<6be0d67 tree>:<6be0d67 tree>/tests python first_release_seed.py DATA_DIR DB_URL KEY
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from signing_fixtures import dev_signer, seed_joint_engagement, sign_and_seal
from sqlmodel import Session

from core.config import Settings
from core.context import Resources
from core.models import ChatMessage, OutboxMessage

data_dir, database_url, key = sys.argv[1:4]
settings = Settings(
    environment="test",
    data_dir=Path(data_dir),
    database_url=database_url,
    encryption_key=key,
    _env_file=None,  # type: ignore[call-arg]
)
resources = Resources.from_settings(settings)  # that release's create_all
signer, _ = dev_signer(settings.data_dir)
seeded = seed_joint_engagement(resources)
sign_and_seal(resources, signer, seeded)
with Session(resources.engine) as db:
    db.add(
        ChatMessage(engagement_id=seeded.engagement_id, sender="taxpayer", sender_name="Shelby", body="Done!")
    )
    db.add(
        OutboxMessage(
            idempotency_key=f"engagement-{seeded.engagement_id}:completed",
            engagement_id=seeded.engagement_id,
            purpose="completed",
            channel="email",
            destination="ada@firm.test",
            subject="Signed",
            body_encrypted=resources.cipher.encrypt_text("All signatures are in.", "outbox"),
            backend="outbox",
            status="sent",
        )
    )
    db.commit()
resources.engine.dispose()
print(json.dumps({"engagement_id": seeded.engagement_id, "document_id": seeded.document_id}))
