"""HubSpot's OpenAPI files and the harness that checks every simulator response against them."""
