"""The engagement workflow and the types that cross the Temporal boundary."""

DEFAULT_TASK_QUEUE = "portico-engagements"


def workflow_id(engagement_id: int, prefix: str = "") -> str:
    """The business key: starting the same engagement twice finds the running workflow."""
    return f"{prefix}engagement-{engagement_id}"
