"""The engagement workflow and the types that cross the Temporal boundary."""

DEFAULT_TASK_QUEUE = "portico-engagements"


def workflow_id(engagement_id: int) -> str:
    return f"engagement-{engagement_id}"
