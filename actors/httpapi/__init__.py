"""The HTTP API of issue 11: its route table (``routes``), the OpenAPI document built
from it (``openapi``) and the aiohttp server (``server``) that the ApiActor
(``actors.api``) runs. Only ``actors.api`` imports ``server`` (and with it aiohttp)."""
