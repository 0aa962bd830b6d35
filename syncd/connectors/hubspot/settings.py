"""HubSpot's connection settings: the `[connections.<name>]` table of a `system = "hubspot"` connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ModelWrapValidatorHandler, SecretStr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from syncd.settings import ConnectionBase


class HubSpotConnection(ConnectionBase):
    """A HubSpot portal reached through an OAuth app."""

    system: Literal["hubspot"]
    base_url: str = "https://api.hubapi.com"
    authorize_url: str = "https://app.hubspot.com/oauth/authorize"
    app_secret: SecretStr | None = None
    portal_id: str | None = None
    # Webhook registration through the Webhooks v3 API: the developer app's id, and the API key of the developer
    # account that owns it (the API authenticates with it, as `hapikey`). Both or neither.
    app_id: int | None = Field(default=None, gt=0)
    developer_api_key: SecretStr | None = None
    # Webhook signatures taken besides v3: v1/v2 carry no timestamp (a captured delivery replays for ever), so
    # only an app that sends nothing else should list them.
    legacy_webhook_signatures: list[Literal["v1", "v2"]] = Field(default_factory=list)
    scopes: list[str] = Field(
        default_factory=lambda: ["crm.objects.contacts.read", "crm.objects.contacts.write",
                                 "crm.objects.companies.read", "crm.objects.companies.write",
                                 "crm.objects.deals.read", "crm.objects.deals.write",
                                 "crm.objects.line_items.read"]
    )

    @model_validator(mode="wrap")
    @classmethod
    def _webhook_keys_together(cls, data: Any, handler: ModelWrapValidatorHandler[HubSpotConnection]
                               ) -> HubSpotConnection:
        """app_id and developer_api_key come together; one alone is reported with the table's other errors."""
        pair = ("app_id", "developer_api_key")
        given = [key for key in pair if isinstance(data, Mapping) and data.get(key) is not None]
        problems: list[InitErrorDetails] = []
        if len(given) == 1:
            missing = next(key for key in pair if key not in given)
            problems.append(InitErrorDetails(
                type=PydanticCustomError(
                    "webhook_keys", "{missing} as well, since {given} is set (registering webhooks needs both; "
                    "give neither to set them up by hand)", {"missing": missing, "given": given[0]}),
                loc=(missing,), input=data,
            ))
        try:
            connection = handler(data)
        except ValidationError as exc:
            if not problems:
                raise
            # Pydantic stops at the first failing validator: merge ours with the fields' own errors.
            raise ValidationError.from_exception_data(exc.title, [*exc.errors(), *problems]) from None  # type: ignore[list-item]
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return connection
