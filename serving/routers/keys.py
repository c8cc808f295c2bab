"""API key management for a tenant's admins: list, create, revoke (only within their tenant)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from serving.auth import Principal
from serving.deps import Keys, require_role
from serving.params import ID_PATH
from serving.schemas import KeyCreate, KeyCreatedPublic, KeyPublic

router = APIRouter(prefix="/keys", tags=["keys"])
Admin = Annotated[Principal, Depends(require_role("admin"))]


@router.get("", response_model=list[KeyPublic])
def list_keys(caller: Admin, keys: Keys) -> list[KeyPublic]:
    return [KeyPublic.of(info) for info in keys.list(caller.tenant_id)]


@router.post("", response_model=KeyCreatedPublic, status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, caller: Admin, keys: Keys, response: Response) -> KeyCreatedPublic:
    info, plaintext = keys.create(caller.tenant_id, body.role, body.name)
    response.headers["Cache-Control"] = "no-store"
    return KeyCreatedPublic(key=KeyPublic.of(info), api_key=plaintext)


@router.delete("/{key_id}", response_model=KeyPublic)
def revoke_key(key_id: Annotated[str, ID_PATH], caller: Admin, keys: Keys) -> KeyPublic:
    return KeyPublic.of(keys.revoke(key_id, caller.tenant_id))
