"""factory-boy factories for every model. Keys are sequences so tests never collide."""

from __future__ import annotations

import uuid
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from onboarding import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")
    is_staff = True


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")
    allowed_origins = factory.LazyFunction(lambda: ["https://app.example.com"])

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> models.Workspace:
        workspace = model_class(*args, **kwargs)
        # Tests that need the clear-text keys read them from `workspace.keys`.
        workspace.keys = workspace.issue_keys()
        workspace.save()
        return workspace


class WorkspaceMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.WorkspaceMember

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = models.WorkspaceMember.Role.EDITOR


class EndUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.EndUser

    workspace = factory.SubFactory(WorkspaceFactory)
    external_id = factory.Sequence(lambda n: f"end-user-{n}")
    traits = factory.LazyFunction(lambda: {"plan": "trial"})
    signed_up_at = factory.LazyFunction(timezone.now)


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Segment

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"segment-{n}")
    name = factory.Sequence(lambda n: f"Segment {n}")


class ConditionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Condition

    segment = factory.SubFactory(SegmentFactory)
    kind = models.Condition.Kind.TRAIT
    trait = "plan"
    operator = "eq"
    value = "trial"


class JourneyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Journey

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"journey-{n}")
    name = factory.Sequence(lambda n: f"Journey {n}")


class WalkthroughFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Walkthrough

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"walkthrough-{n}")
    name = factory.Sequence(lambda n: f"Walkthrough {n}")


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Step

    walkthrough = factory.SubFactory(WalkthroughFactory)
    position = factory.Sequence(lambda n: n)
    title = factory.Sequence(lambda n: f"Step {n}")
    body_markdown = "Click **here** to continue."
    selector = "#target"
    page_url_pattern = "/dashboard"


class MilestoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Milestone

    journey = factory.SubFactory(JourneyFactory)
    workspace = factory.SelfAttribute("journey.workspace")
    key = factory.Sequence(lambda n: f"milestone-{n}")
    name = factory.Sequence(lambda n: f"Milestone {n}")
    position = factory.Sequence(lambda n: n)
    criterion = models.Criterion.EVENT
    event_name = "message_sent"
    min_count = 1


class TooltipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Tooltip

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"tooltip-{n}")
    name = factory.Sequence(lambda n: f"Tooltip {n}")
    selector = "#help"
    body_markdown = "A hint."


class ProgressBarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ProgressBar

    journey = factory.SubFactory(JourneyFactory)
    workspace = factory.SelfAttribute("journey.workspace")
    key = factory.Sequence(lambda n: f"progress-{n}")
    name = factory.Sequence(lambda n: f"Progress {n}")


class ProgressBarItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ProgressBarItem

    progress_bar = factory.SubFactory(ProgressBarFactory)
    milestone = factory.SubFactory(
        MilestoneFactory, journey=factory.SelfAttribute("..progress_bar.journey")
    )
    label = "Do it"


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Event

    end_user = factory.SubFactory(EndUserFactory)
    workspace = factory.SelfAttribute("end_user.workspace")
    client_id = factory.LazyFunction(uuid.uuid4)
    name = "message_sent"
    timestamp = factory.LazyFunction(timezone.now)
    source = models.Event.Source.SERVER


class JourneyProgressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.JourneyProgress

    end_user = factory.SubFactory(EndUserFactory)
    workspace = factory.SelfAttribute("end_user.workspace")
    journey = factory.SubFactory(JourneyFactory, workspace=factory.SelfAttribute("..workspace"))
    started_at = factory.LazyFunction(timezone.now)


class MilestoneCompletionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.MilestoneCompletion

    end_user = factory.SubFactory(EndUserFactory)
    workspace = factory.SelfAttribute("end_user.workspace")
    milestone = factory.SubFactory(
        MilestoneFactory,
        journey__workspace=factory.SelfAttribute("...workspace"),
    )
    journey = factory.SelfAttribute("milestone.journey")
    completed_at = factory.LazyFunction(timezone.now)
    source = models.Event.Source.SERVER


class ContentStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ContentState

    end_user = factory.SubFactory(EndUserFactory)
    kind = models.PublishedVersion.Kind.WALKTHROUGH
    key = factory.Sequence(lambda n: f"walkthrough-{n}")


class BannerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Banner

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"banner-{n}")
    name = factory.Sequence(lambda n: f"Banner {n}")
    body_markdown = "Scheduled maintenance on **Sunday**."


class GuideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Guide

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"guide-{n}")
    name = factory.Sequence(lambda n: f"Guide {n}")
    selector = "#empty"
    body_markdown = "No campaigns yet."
