"""The portal's deal pipeline and the Pipelines API that describes it (v3, and the legacy v1 forms readers use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncd.sandbox.hubspot.catalog import DEAL_STAGES
from syncd.sandbox.hubspot.errors import json_response, not_found, validation_error

if TYPE_CHECKING:
    from syncd.sandbox.hubspot.app import HubSpotSimulator

# HubSpot's default pipelines are dated at the epoch ("The default pipelines will have createdAt = 0").
_EPOCH_ISO = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Stage:
    """One stage of the default deal pipeline, with HubSpot's label and win probability."""

    id: str
    label: str
    probability: float
    order: int

    @property
    def closed(self) -> bool:
        """Won and lost are the closed stages."""
        return self.id in ("closedwon", "closedlost")

    def v3_json(self) -> dict[str, Any]:
        """A `PipelineStage` body (metadata values are strings, as the v3 API sends them)."""
        return {
            "id": self.id, "label": self.label, "displayOrder": self.order, "archived": False,
            "metadata": {"isClosed": str(self.closed).lower(), "probability": str(self.probability)},
            "createdAt": _EPOCH_ISO, "updatedAt": _EPOCH_ISO,
        }


_LABELS = {
    "appointmentscheduled": ("Appointment Scheduled", 0.2),
    "qualifiedtobuy": ("Qualified To Buy", 0.4),
    "presentationscheduled": ("Presentation Scheduled", 0.6),
    "decisionmakerboughtin": ("Decision Maker Bought-In", 0.8),
    "contractsent": ("Contract Sent", 0.9),
    "closedwon": ("Closed Won", 1.0),
    "closedlost": ("Closed Lost", 0.0),
}
# The stages of the one pipeline the sandbox portal has: HubSpot's default "Sales Pipeline".
STAGES: tuple[Stage, ...] = tuple(
    Stage(stage_id, _LABELS[stage_id][0], _LABELS[stage_id][1], order) for order, stage_id in enumerate(DEAL_STAGES)
)
PIPELINE_ID = "default"
PIPELINE_LABEL = "Sales Pipeline"


def pipeline_v3_json() -> dict[str, Any]:
    """The default deal pipeline as a v3 `Pipeline` body."""
    return {
        "id": PIPELINE_ID, "label": PIPELINE_LABEL, "displayOrder": 0, "archived": False,
        "stages": [s.v3_json() for s in STAGES], "createdAt": _EPOCH_ISO, "updatedAt": _EPOCH_ISO,
    }


def pipeline_deals_v1_json() -> dict[str, Any]:
    """The pipeline as the legacy Deal Pipelines API (`/deals/v1/pipelines`) described it."""
    return {
        "pipelineId": PIPELINE_ID, "label": PIPELINE_LABEL, "displayOrder": 0, "active": True,
        "stages": [
            {"stageId": s.id, "label": s.label, "probability": s.probability, "active": True,
             "displayOrder": s.order, "closedWon": s.id == "closedwon"}
            for s in STAGES
        ],
    }


def pipeline_crm_v1_json() -> dict[str, Any]:
    """The pipeline as the legacy CRM Pipelines API (`/crm-pipelines/v1/pipelines/deals`) described it."""
    return {
        "pipelineId": PIPELINE_ID, "objectType": "DEAL", "label": PIPELINE_LABEL, "displayOrder": 0,
        "active": True, "default": True, "createdAt": 0, "updatedAt": 0,
        "stages": [
            {"stageId": s.id, "label": s.label, "displayOrder": s.order, "active": True, "createdAt": 0,
             "updatedAt": 0, "metadata": {"isClosed": str(s.closed).lower(), "probability": str(s.probability)}}
            for s in STAGES
        ],
    }


def add_pipeline_routes(app: web.Application, sim: HubSpotSimulator) -> None:
    """GET /crm/v3/pipelines/{objectType}[/{pipelineId}[/stages[/{stageId}]]] and the legacy v1 reads.

    Only deals have pipelines in this portal (no tickets); for the other objects it holds, HubSpot answers 400.
    """

    def deals_only(request: web.Request) -> None:
        obj = sim.object_type(request.match_info["object_type"])
        if obj != "deals":
            raise validation_error(f"Object type {obj} does not support pipelines.")

    def the_pipeline(request: web.Request) -> None:
        deals_only(request)
        if request.match_info["pipeline_id"] != PIPELINE_ID:
            raise not_found(f"Unable to find pipeline {request.match_info['pipeline_id']!r}.")

    async def list_pipelines(request: web.Request) -> web.Response:
        deals_only(request)
        return json_response({"results": [pipeline_v3_json()]})

    async def get_pipeline(request: web.Request) -> web.Response:
        the_pipeline(request)
        return json_response(pipeline_v3_json())

    async def list_stages(request: web.Request) -> web.Response:
        the_pipeline(request)
        return json_response({"results": [s.v3_json() for s in STAGES]})

    async def get_stage(request: web.Request) -> web.Response:
        the_pipeline(request)
        for stage in STAGES:
            if stage.id == request.match_info["stage_id"]:
                return json_response(stage.v3_json())
        raise not_found(f"Unable to find stage {request.match_info['stage_id']!r}.")

    async def deals_v1(request: web.Request) -> web.Response:
        return json_response([pipeline_deals_v1_json()])

    async def crm_v1(request: web.Request) -> web.Response:
        deals_only(request)
        return json_response({"results": [pipeline_crm_v1_json()]})

    base = "/crm/v3/pipelines/{object_type}"
    app.router.add_get(base, sim.api(list_pipelines))
    app.router.add_get(base + "/{pipeline_id}", sim.api(get_pipeline))
    app.router.add_get(base + "/{pipeline_id}/stages", sim.api(list_stages))
    app.router.add_get(base + "/{pipeline_id}/stages/{stage_id}", sim.api(get_stage))
    app.router.add_get("/deals/v1/pipelines", sim.api(deals_v1))
    app.router.add_get("/crm-pipelines/v1/pipelines/{object_type}", sim.api(crm_v1))
