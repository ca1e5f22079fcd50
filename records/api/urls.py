"""API routes of the records app (mounted under /api/v1/): the Art. 12(3) biometric record, training data."""

from django.urls import path

from records.api.views import BiometricLogView, BiometricUseViewSet, TrainingDataExportView

urlpatterns = [
    path("systems/<slug:slug>/biometric-log/", BiometricLogView.as_view(), name="biometric-log"),
    path("systems/<slug:slug>/training-data/", TrainingDataExportView.as_view(), name="training-data"),
    path(
        "systems/<slug:slug>/biometric-uses/",
        BiometricUseViewSet.as_view({"get": "list", "post": "create"}),
        name="biometric-uses",
    ),
    path(
        "systems/<slug:slug>/biometric-uses/<int:pk>/end/",
        BiometricUseViewSet.as_view({"post": "end"}),
        name="biometric-use-end",
    ),
]
