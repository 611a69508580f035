"""The API's route modules; importing this package registers every route."""

from services.gateway.api import (  # noqa: F401
    accounts,
    bills,
    cart,
    health,
    identity,
    links,
)
