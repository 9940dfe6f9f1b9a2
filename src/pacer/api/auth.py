"""Bearer tokens on every ``/api/v1`` route: ``read`` to look, ``write`` to change, ``admin``
for raw SQL. The token is looked up once per request and kept on ``request.state``.

``/healthz`` and the ``/result`` receiver stay open: load balancers and the demo's own sinks
call them without credentials.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from pacer.api.app import ApiServices, services
from pacer.domain.tokens import Scope, Token
from pacer.ports import ActionCatalog
from pacer.services.tokens import TokenService

_bearer = HTTPBearer(auto_error=False, description="A token from `pacer tokens create`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def principal(
    request: Request,
    credentials: Credentials,
    api: Annotated[ApiServices, Depends(services)],
) -> Token:
    """The caller's token (any scope); 401 without a valid one."""
    cached: Token | None = getattr(request.state, "token", None)
    if cached is None:
        secret = credentials.credentials if credentials is not None else None
        cached = await api.tokens.identify(secret)
        request.state.token = cached
    return cached


Principal = Annotated[Token, Depends(principal)]


def require(scope: Scope) -> Callable[..., Awaitable[Token]]:
    """A dependency that answers 403 unless the caller's token includes ``scope``."""

    async def check(token: Principal) -> Token:
        TokenService.require(token, scope)
        return token

    check.__name__ = f"require_{scope.value}"
    return check


def require_admin_for(token: Token, actions: ActionCatalog, action: BaseModel) -> None:
    """403 unless the caller is an admin, for actions that amount to running arbitrary code:
    raw SQL, or a python function that no job definition registered. Metric jobs compile to
    vetted SQL and http actions only post, so ``write`` suffices for them."""
    why = actions.needs_admin(action.model_dump(mode="json"))
    if why is not None:
        TokenService.require(token, Scope.ADMIN, why)


READ = [Depends(require(Scope.READ))]
WRITE = [Depends(require(Scope.WRITE))]
