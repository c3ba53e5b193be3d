"""Thin API views: parse, call one service or query, serialize.

Server-to-server endpoints authenticate with `Authorization: Bearer sk_…`; every lookup is
scoped to the key's workspace, so a key of workspace A reaches nothing of workspace B.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotAuthenticated, NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from onboarding import batching, recording
from onboarding.api import serializers as s
from onboarding.api.parsers import StrictJSONParser
from onboarding.auth import HasWorkspace, SecretKeyAuthentication
from onboarding.models import EndUser, ErasureRecord, Event, Milestone, Workspace

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Malformed or invalid input"),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing or wrong secret key"),
    404: OpenApiResponse(s.ErrorSerializer, description="Unknown user or milestone"),
    413: OpenApiResponse(s.ErrorSerializer, description="Body or batch too large"),
    429: OpenApiResponse(s.ErrorSerializer, description="Rate limited (see Retry-After)"),
    503: OpenApiResponse(s.ErrorSerializer, description="A dependency is down (see Retry-After)"),
}


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class InvalidInput(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, refusing oversized bodies before reading them."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.MILEPOST_MAX_BATCH_BYTES:
        raise PayloadTooLarge(
            f"The body is {length} bytes; the limit is {settings.MILEPOST_MAX_BATCH_BYTES}."
        )
    if not request.body:
        return {}
    data = request.data
    if not isinstance(data, dict):
        raise ParseError("The body must be a JSON object.")
    return data


class ServerView(APIView):
    authentication_classes = [SecretKeyAuthentication]
    permission_classes = [HasWorkspace]
    parser_classes = [StrictJSONParser]

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        raise NotAuthenticated(HasWorkspace.message, "not_authenticated")

    @property
    def workspace(self) -> Workspace:
        assert isinstance(self.request.auth, Workspace)  # noqa: S101 - HasWorkspace ensures it
        return self.request.auth

    @staticmethod
    def clean_id(external_id: str) -> str:
        """The end user id of the URL, checked before any query (NUL, surrogates, length)."""
        try:
            return recording.clean_external_id(external_id)
        except recording.EventRejected as error:
            raise InvalidInput("invalid_user", str(error)) from None

    def end_user(self, external_id: str) -> EndUser:
        external_id = self.clean_id(external_id)
        end_user = EndUser.objects.filter(workspace=self.workspace, external_id=external_id).first()
        if end_user is None:
            raise NotFound(f"No end user {external_id!r} in this workspace.", "unknown_user")
        return end_user


class HealthView(APIView):
    @extend_schema(
        responses=inline_serializer("Health", {"status": serializers.CharField()}),
        summary="Liveness check",
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class EndUserView(ServerView):
    @extend_schema(
        summary="Create or update an end user's traits",
        request=s.TraitsSerializer,
        responses={200: s.EndUserSerializer, 201: s.EndUserSerializer, **ERRORS},
    )
    def put(self, request: Request, external_id: str) -> Response:
        external_id = self.clean_id(external_id)
        body = s.TraitsSerializer(data=json_object(request))
        body.is_valid(raise_exception=True)
        try:
            traits = recording.clean_traits(body.validated_data["traits"])
        except recording.EventRejected as error:
            raise InvalidInput("invalid_traits", str(error)) from None
        existed = EndUser.objects.filter(workspace=self.workspace, external_id=external_id).exists()
        end_user = recording.end_user_identify(
            workspace=self.workspace,
            external_id=external_id,
            traits=traits,
            replace=body.validated_data["replace"],
        )
        return Response(
            s.EndUserSerializer(end_user).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Erase every record of an end user",
        responses={200: s.ErasedSerializer, **ERRORS},
    )
    def delete(self, request: Request, external_id: str) -> Response:
        erased = recording.end_user_erase(
            end_user=self.end_user(external_id),
            requested_by=ErasureRecord.Requester.SECRET_KEY,
        )
        return Response({"user": external_id, "erased": erased})


class ProgressView(ServerView):
    @extend_schema(
        summary="An end user's progress in every journey",
        responses={200: s.ProgressSerializer, **ERRORS},
    )
    def get(self, request: Request, external_id: str) -> Response:
        end_user = self.end_user(external_id)
        return Response(
            {"user": external_id, "journeys": recording.journey_progress(end_user=end_user)}
        )


class MilestoneReportView(ServerView):
    @extend_schema(
        summary="Report that an end user reached a milestone",
        description="Creates the end user if it is new. Idempotent: a second report of the "
        "same milestone answers completed=false with the first completion time.",
        request=s.MilestoneReportSerializer,
        responses={
            200: s.MilestoneCompletionSerializer,
            201: s.MilestoneCompletionSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request, external_id: str, milestone_key: str) -> Response:
        body = s.MilestoneReportSerializer(data=json_object(request))
        body.is_valid(raise_exception=True)
        milestone = Milestone.objects.filter(workspace=self.workspace, key=milestone_key).first()
        if milestone is None:
            raise NotFound(
                f"No milestone with key {milestone_key!r} in this workspace.", "unknown_milestone"
            )
        end_user = recording.end_user_identify(
            workspace=self.workspace, external_id=self.clean_id(external_id), traits={}
        )
        completion = recording.milestone_complete(
            end_user=end_user,
            milestone=milestone,
            at=body.validated_data.get("at"),
            source=Event.Source.SERVER,
        )
        already = completion is None
        if completion is None:
            completion = get_object_or_404(milestone.completions.all(), end_user=end_user)
        return Response(
            {
                "milestone": milestone.key,
                "completed": not already,
                "completed_at": completion.completed_at,
            },
            status=status.HTTP_200_OK if already else status.HTTP_201_CREATED,
        )


class EventsView(ServerView):
    @extend_schema(
        summary="Record a batch of events",
        description="Each event's `id` makes retries safe. The reply lists accepted ids, "
        "duplicate ids (already stored) and rejected ones with the reason; good events are "
        "stored even when others are rejected.",
        request=s.EventBatchSerializer,
        responses={200: s.AckSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = json_object(request)
        events = body.get("events")
        if not isinstance(events, list):
            raise InvalidInput("invalid", "events must be a list of events.")
        if len(events) > settings.MILEPOST_MAX_EVENTS_PER_BATCH:
            raise PayloadTooLarge(
                f"{len(events)} events in one batch; the limit is "
                f"{settings.MILEPOST_MAX_EVENTS_PER_BATCH}."
            )
        # The after-commit work of the batch's completions (rollup marks) once per slice.
        with batching.batch_of_after_commit_work():
            ack = recording.events_record(
                workspace=self.workspace,
                events=events,
                source=Event.Source.SERVER,
                sent_at=body.get("sent_at"),
            )
        return Response(ack.as_dict())
