from django.urls import URLPattern, URLResolver, path

from billing import api, views

# Portal pages of this app.
urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/plans/", views.plan_list, name="plan-list"),
    path("billing/plans/new/", views.plan_create, name="plan-create"),
    path("billing/plans/<int:plan_id>/", views.plan_detail, name="plan-detail"),
    path("billing/plans/<int:plan_id>/revise/", views.plan_revise, name="plan-revise"),
    path("billing/contracts/", views.contract_list, name="contract-list"),
    path("billing/contracts/new/", views.contract_create, name="contract-create"),
    path("billing/contracts/<int:contract_id>/", views.contract_detail, name="contract-detail"),
    path("billing/contracts/<int:contract_id>/edit/", views.contract_edit, name="contract-edit"),
    path(
        "billing/contracts/<int:contract_id>/devices/",
        views.contract_device_add,
        name="contract-device-add",
    ),
    path(
        "billing/contracts/<int:contract_id>/compute/",
        views.contract_compute,
        name="contract-compute",
    ),
    path(
        "billing/contract-devices/<int:contract_device_id>/leave/",
        views.contract_device_leave,
        name="contract-device-leave",
    ),
    path(
        "billing/devices/<int:device_id>/corrections/new/",
        views.correction_create,
        name="correction-create",
    ),
    path("billing/statements/", views.statement_list, name="statement-list"),
    path(
        "billing/statements/<int:statement_id>/",
        views.statement_detail,
        name="statement-detail",
    ),
    path(
        "billing/statements/<int:statement_id>/finalise/",
        views.statement_finalise,
        name="statement-finalise",
    ),
    path(
        "billing/statements/<int:statement_id>/adjust/",
        views.statement_adjust,
        name="statement-adjust",
    ),
    path(
        "billing/statements/<int:statement_id>/statement.csv",
        views.statement_csv,
        name="statement-csv",
    ),
    path(
        "billing/statements/<int:statement_id>/statement.pdf",
        views.statement_pdf,
        name="statement-pdf",
    ),
    path("billing/exports/usage.csv", views.usage_export, name="usage-export"),
]

# Routes under /api/v1/.
api_urlpatterns: list[URLPattern | URLResolver] = [
    path("plans/<int:plan_id>", api.PlanDetailApi.as_view(), name="api-plan-detail"),
    path(
        "contracts/<int:contract_id>", api.ContractDetailApi.as_view(), name="api-contract-detail"
    ),
    path("statements", api.StatementListApi.as_view(), name="api-statement-list"),
    path(
        "statements/<int:statement_id>",
        api.StatementDetailApi.as_view(),
        name="api-statement-detail",
    ),
    path(
        "statements/<int:statement_id>/finalise",
        api.StatementFinaliseApi.as_view(),
        name="api-statement-finalise",
    ),
    path(
        "statements/<int:statement_id>/csv",
        api.StatementCsvApi.as_view(),
        name="api-statement-csv",
    ),
    path(
        "statements/<int:statement_id>/pdf",
        api.StatementPdfApi.as_view(),
        name="api-statement-pdf",
    ),
    path(
        "contracts/<int:contract_id>/statements",
        api.StatementComputeApi.as_view(),
        name="api-statement-compute",
    ),
    path("billing/usage", api.UsageExportApi.as_view(), name="api-usage-export"),
]
