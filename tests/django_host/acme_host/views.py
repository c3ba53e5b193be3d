"""The customer's app: a page with the snippet, and work that tells Milepost after commit."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from milepost_client.django import complete_milestone_on_commit, track_on_commit


def milepost_user_id(user: User) -> str:
    return f"acme-{user.pk}"


def milepost_traits(user: User) -> dict[str, Any]:
    return {"plan": "trial", "email": user.email, "note": "</script><b>"}


def login_as(request: HttpRequest, username: str) -> HttpResponse:
    user, _ = User.objects.get_or_create(username=username, email=f"{username}@acme.test")
    login(request, user)
    return redirect("/page")


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "acme_host/page.html")


@csrf_exempt
def report_create(request: HttpRequest) -> JsonResponse:
    with transaction.atomic():
        request.user.first_name = "Reporter"
        request.user.save(update_fields=["first_name"])
        user_id = milepost_user_id(request.user)
        event_id = track_on_commit(user_id, "report_created", {"rows": 3})
        complete_milestone_on_commit(user_id, "installed-js")
    return JsonResponse({"event_id": event_id})


class ReportFailed(Exception):
    pass


@csrf_exempt
def report_create_failing(request: HttpRequest) -> JsonResponse:
    event_id = ""
    try:
        with transaction.atomic():
            event_id = track_on_commit(milepost_user_id(request.user), "report_created")
            raise ReportFailed
    except ReportFailed:
        return JsonResponse({"event_id": event_id}, status=500)
