"""Bearer-token auth for the REST API. ADMIN_API_KEY is an admin token."""
import hmac

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kindly.settings import settings

bearer = HTTPBearer(auto_error=False)


def require_admin(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    if credentials is None or not hmac.compare_digest(credentials.credentials, settings.admin_api_key):
        raise HTTPException(status_code=401, detail="a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return "admin"
