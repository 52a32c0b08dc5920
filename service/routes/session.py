"""Who the caller is: the role of the presented API key, so a client (the console) can tell which
actions it may offer before trying them."""

from __future__ import annotations

from fastapi import APIRouter

from service.auth import ROLES
from service.deps import Checkout, StateDep
from service.schemas import WhoAmIOut

router = APIRouter(prefix="/v1", tags=["operations"])


@router.get("/whoami", response_model=WhoAmIOut, summary="The role of the presented API key (401 without a valid one)")
async def whoami(state: StateDep, role: str | None = Checkout) -> WhoAmIOut:
    # an open server (no keys) lets everyone do everything
    return WhoAmIOut(role=role or ROLES[-1], keys_required=state.keys.enabled, roles=list(ROLES))
