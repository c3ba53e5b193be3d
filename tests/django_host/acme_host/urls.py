from __future__ import annotations

from django.urls import path

from acme_host import views

urlpatterns = [
    path("login/<str:username>", views.login_as),
    path("page", views.page),
    path("reports", views.report_create),
    path("reports/failing", views.report_create_failing),
]
