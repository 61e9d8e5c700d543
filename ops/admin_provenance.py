"""The provenance pages in the admin (chains from `ops.provenance`) and the form that links a
whitepaper run to the research candidates it inspired.

URLs (registered by `ops.admin.ProcessHeartbeatAdmin.get_urls`, like the dashboard):
`admin:ops_provenance_decision` (a decision's chain up to the paper),
`admin:ops_provenance_whitepaper` (a whitepaper run's chain down to the orders) and
`admin:ops_provenance_link` (the link form). The decision and whitepaper-run change pages link
to them from templates in this app (`ops/templates/admin/trading/tradedecision/change_form.html`,
`.../whitepapers/whitepaperanalysisrun/change_form.html`), which override the admin's default
change form by name: ops is listed first in INSTALLED_APPS, so trading and whitepapers neither
import ops nor know its URL names.

A chain crosses three apps: reading one needs the view permission of each
(`PROVENANCE_PERMISSIONS`); linking also needs `whitepapers.change_whitepaperanalysisrun`, the
permission of the run's other admin actions. The form refuses an id that names no candidate in
the research ledger (the agent's finalize cannot check this; its links may stay unresolved).
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from ops.provenance import decision_provenance, unresolved_candidate_ids, whitepaper_provenance
from trading.models import TradeDecision
from whitepapers.models import CandidateLinkSource, WhitepaperAnalysisRun
from whitepapers.services.links import CandidateLinkError, candidate_ids_check, run_candidates_link

PROVENANCE_PERMISSIONS = (
    "trading.view_tradedecision",
    "autonomy.view_promotion",
    "whitepapers.view_whitepaperanalysisrun",
)
LINK_PERMISSION = "whitepapers.change_whitepaperanalysisrun"


def _require(request: HttpRequest, *permissions: str) -> None:
    if not request.user.has_perms(permissions):
        raise PermissionDenied


class CandidateLinkForm(forms.Form):
    candidate_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 40}),
        help_text="Research candidate ids (cand-<12 hex>), separated by spaces, commas or lines.",
    )

    def clean_candidate_ids(self) -> list[str]:
        raw = self.cleaned_data["candidate_ids"]
        try:
            ids = candidate_ids_check([p for p in re.split(r"[\s,]+", raw) if p])
        except CandidateLinkError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        if not ids:
            raise forms.ValidationError("name at least one candidate id", code="required")
        unknown = unresolved_candidate_ids(ids)
        if unknown:
            raise forms.ValidationError(
                f"no research candidate with the id(s) {', '.join(unknown)}", code="unknown"
            )
        return ids


def decision_view(request: HttpRequest, admin_site: AdminSite, decision_id: int) -> HttpResponse:
    _require(request, *PROVENANCE_PERMISSIONS)
    try:
        chain = decision_provenance(decision_id=decision_id)
    except TradeDecision.DoesNotExist as exc:
        raise Http404(f"no decision {decision_id}") from exc
    context = {
        **admin_site.each_context(request),
        "title": f"Provenance of decision {decision_id}",
        "chain": chain,
        "decision_list": [chain.decision],
    }
    return TemplateResponse(request, "admin/torghut/provenance_decision.html", context)


def whitepaper_view(request: HttpRequest, admin_site: AdminSite, run_id: str) -> HttpResponse:
    _require(request, *PROVENANCE_PERMISSIONS)
    try:
        chain = whitepaper_provenance(run_id=run_id)
    except WhitepaperAnalysisRun.DoesNotExist as exc:
        raise Http404(f"no whitepaper run {run_id}") from exc
    context = {
        **admin_site.each_context(request),
        "title": f"Provenance of whitepaper run {run_id}",
        "chain": chain,
        "may_link": request.user.has_perm(LINK_PERMISSION),
    }
    return TemplateResponse(request, "admin/torghut/provenance_whitepaper.html", context)


def link_view(request: HttpRequest, admin_site: AdminSite, run_id: str) -> HttpResponse:
    _require(request, *PROVENANCE_PERMISSIONS, LINK_PERMISSION)
    run = WhitepaperAnalysisRun.objects.filter(run_id=run_id).first()
    if run is None:
        raise Http404(f"no whitepaper run {run_id}")
    form = CandidateLinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        linked = run_candidates_link(
            run_id=run_id,
            candidate_ids=form.cleaned_data["candidate_ids"],
            source=CandidateLinkSource.ADMIN,
            linked_by=request.user.get_username(),
        )
        # the run's History in the admin names who linked what
        admin_site.get_model_admin(WhitepaperAnalysisRun).log_change(
            request, run, f"Linked research candidates: {', '.join(linked) or 'none new'}"
        )
        messages.success(
            request, f"{run_id}: linked {len(linked)} new candidate(s) {', '.join(linked)}".strip()
        )
        return HttpResponseRedirect(reverse("admin:ops_provenance_whitepaper", args=[run_id]))
    context = {
        **admin_site.each_context(request),
        "title": f"Link research candidates to {run_id}",
        "run": run,
        "form": form,
    }
    return TemplateResponse(request, "admin/torghut/provenance_link.html", context)
