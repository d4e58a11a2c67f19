from django.urls import path

from tests.django.site import views

urlpatterns = [
    path("calls", views.calls),
    path("page", views.page),
    path("cookie", views.cookie),
    path("item", views.item),
    path("vary", views.vary),
    path("stream", views.stream),
    path("text", views.text),
    path("private/page", views.private),
    path("swr", views.swr),
    path("astream", views.astream),
    path("slow", views.slow),
]
