"""The preparer workspace: server-rendered pages on the same rules as the preparer JSON API."""

from fastapi import APIRouter

from web.preparer import (
    account_pages,
    auth_pages,
    client_pages,
    dashboard_pages,
    engagement_actions,
    engagement_pages,
    import_pages,
    retention_pages,
    settings_pages,
)

router = APIRouter(include_in_schema=False)
router.include_router(auth_pages.router)
router.include_router(dashboard_pages.router)
router.include_router(engagement_pages.router)
router.include_router(engagement_actions.router)
router.include_router(client_pages.router)
router.include_router(client_pages.actions)
router.include_router(retention_pages.router)
router.include_router(settings_pages.router)
router.include_router(import_pages.router)
router.include_router(account_pages.router)
