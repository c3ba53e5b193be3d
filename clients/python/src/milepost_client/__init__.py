"""Python client for Milepost's server API. See Milepost's README, "Python client".

Every call answers a frozen dataclass (`milepost_client.models` for end users, events and
content, `milepost_client.reports` for the analytics reports), the same for `Milepost` and
`AsyncMilepost`; each keeps the JSON it was parsed from in `raw`."""

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
    UnavailableError,
    UnexpectedResponseError,
)
from milepost_client.models import (
    ContentChanges,
    EndUser,
    Erased,
    EventAck,
    MilestoneCompletion,
    Progress,
    PublishedVersion,
)
from milepost_client.parsing import Result
from milepost_client.reports import (
    AdoptionMatrix,
    EventFunnel,
    JourneyFunnel,
    Lifecycle,
    PaiValidation,
    PqlList,
    Retention,
    Velocity,
    WalkthroughFunnel,
)
from milepost_client.transport import RetryPolicy

__all__ = [
    "AdoptionMatrix",
    "ApiError",
    "AsyncMilepost",
    "AuthenticationError",
    "ContentChanges",
    "EndUser",
    "Erased",
    "EventAck",
    "EventFunnel",
    "InvalidRequestError",
    "JourneyFunnel",
    "Lifecycle",
    "Milepost",
    "MilepostError",
    "MilestoneCompletion",
    "NotFoundError",
    "PaiValidation",
    "PayloadTooLargeError",
    "PqlList",
    "Progress",
    "PublishedVersion",
    "QueueFullError",
    "RateLimitedError",
    "Result",
    "Retention",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "UnavailableError",
    "UnexpectedResponseError",
    "Velocity",
    "WalkthroughFunnel",
]
