"""Python client for Milepost's server API. See Milepost's README, "Python client"."""

from __future__ import annotations

__version__ = "0.1.0"

from milepost_client.async_client import AsyncMilepost
from milepost_client.client import Milepost
from milepost_client.errors import (
    ApiError,
    AuthenticationError,
    InvalidRequestError,
    MilepostError,
    NotFoundError,
    PayloadTooLargeError,
    QueueFullError,
    RateLimitedError,
    ServerError,
    TransportError,
)

__all__ = [
    "ApiError",
    "AsyncMilepost",
    "AuthenticationError",
    "InvalidRequestError",
    "Milepost",
    "MilepostError",
    "NotFoundError",
    "PayloadTooLargeError",
    "QueueFullError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
]
