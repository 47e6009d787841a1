"""The campaign API: create, start, pause, resume, and the progress (kindly/campaigns.py)."""
from fastapi import APIRouter, Depends, HTTPException

from gateway.api import RowId
from gateway.auth import require_admin
from gateway.schemas import CampaignIn
from kindly import campaigns
from kindly.db import session_scope
from kindly.models import Campaign

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])


def _progress(campaign_id: int) -> dict:
    with session_scope() as session:
        if session.get(Campaign, campaign_id) is None:
            raise HTTPException(status_code=404, detail=f"campaign {campaign_id} not found")
        return campaigns.progress(session, campaign_id)


@router.post("/campaigns", status_code=201)
def create_campaign(body: CampaignIn) -> dict:
    try:
        with session_scope() as session:
            campaign = campaigns.create_campaign(
                session, name=body.name, segment=body.segment, filter=body.filter, plan=campaigns.parse_plan(body.plan),
                starts_at=body.starts_at, calls_per_second=body.calls_per_second, texts_per_second=body.texts_per_second,
            )
            campaign_id = campaign.id
    except campaigns.CampaignError as error:
        status = 409 if "already exists" in str(error) else 422
        raise HTTPException(status_code=status, detail=str(error)) from error
    return _progress(campaign_id)


@router.get("/campaigns/{campaign_id}")
def get_campaign(campaign_id: RowId) -> dict:
    return _progress(campaign_id)


def _change(action, campaign_id: int) -> dict:
    _progress(campaign_id)  # 404 first
    try:
        action(campaign_id)
    except campaigns.CampaignError as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return _progress(campaign_id)


@router.post("/campaigns/{campaign_id}/start")
def start_campaign(campaign_id: RowId) -> dict:
    return _change(campaigns.start, campaign_id)


@router.post("/campaigns/{campaign_id}/pause")
def pause_campaign(campaign_id: RowId) -> dict:
    return _change(campaigns.pause, campaign_id)


@router.post("/campaigns/{campaign_id}/resume")
def resume_campaign(campaign_id: RowId) -> dict:
    return _change(campaigns.resume, campaign_id)
