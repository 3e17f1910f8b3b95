"""The cross-agency replay check on hand-made answers: it fails exactly when agency B learns
something of agency A's objects (so the fuzz run's silence means something)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fuzz.checks import CrossAgencyLeak, make_cross_agency_check

A_CASE = "6f1c1a52-3f0e-4d8a-9a57-0c2d6c4e0a11"
A_LEAD = "0b8e4a77-2d7f-4c53-8f0a-5f1d3e9b7c22"
B_CASE = "d2a0b7c1-9e4f-4b6a-8c3d-1e2f3a4b5c66"


def answer(status: int, body: Any = None) -> Any:
    return SimpleNamespace(
        status_code=status,
        headers={"content-type": ["application/json"]},
        content=json.dumps(body).encode() if body is not None else b"",
    )


def request(method: str, path: str, *, path_parameters: Any = None, query: Any = None, body: Any = None) -> Any:
    return SimpleNamespace(
        method=method,
        formatted_path=path,
        path_parameters=path_parameters or {},
        query=query or {},
        body=body,
        operation=SimpleNamespace(label=f"{method} {path}"),
    )


def run(case: Any, a_answer: Any, b_answer: Any, role: str = "supervisor") -> None:
    check = make_cross_agency_check(role=role, a_ids={A_CASE, A_LEAD}, a_seqs=[7], replay=lambda _case: b_answer)
    check(None, a_answer, case)


def test_b_reading_a_case_by_its_id_is_a_leak_and_404_is_not() -> None:
    case = request("GET", f"/api/cases/{A_CASE}/", path_parameters={"id": A_CASE})
    with pytest.raises(CrossAgencyLeak, match="expected 404"):
        run(case, answer(200, {"id": A_CASE}), answer(200, {"id": A_CASE}))
    with pytest.raises(CrossAgencyLeak, match="expected 404"):
        run(case, answer(200, {"id": A_CASE}), answer(403, {"detail": "no", "code": "permission_denied"}))
    run(case, answer(200, {"id": A_CASE}), answer(404, {"detail": "Not found.", "code": "not_found"}))


def test_an_audit_proof_of_a_sequence_number_of_a_must_be_404_for_b() -> None:
    case = request("GET", "/api/audit/events/7/proof/", path_parameters={"seq": 7})
    with pytest.raises(CrossAgencyLeak):
        run(case, answer(200, {"seq": 7}), answer(200, {"seq": 7}), role="auditor")


def test_a_list_b_gets_must_not_show_a_row_of_a() -> None:
    case = request("GET", "/api/cases/")
    with pytest.raises(CrossAgencyLeak, match="names A's objects"):
        run(case, answer(200, {"results": [{"id": A_CASE}]}), answer(200, {"results": [{"id": A_CASE}]}))
    run(case, answer(200, {"results": [{"id": A_CASE}]}), answer(200, {"results": [{"id": B_CASE}]}))


def test_an_id_a_was_shown_mid_run_counts_as_a_objects_too() -> None:
    created = "9c7d8e6f-5a4b-4c3d-8e2f-1a0b9c8d7e6f"
    case = request("GET", "/api/leads/")
    with pytest.raises(CrossAgencyLeak):
        run(case, answer(200, {"results": [{"id": created}]}), answer(200, {"results": [{"id": created}]}))


def test_b_creating_in_a_case_is_a_leak_and_a_400_is_not() -> None:
    case = request("POST", "/api/leads/", body={"case": A_CASE, "display_name": "x"})
    with pytest.raises(CrossAgencyLeak, match="naming A's"):
        run(case, answer(201, {"id": A_LEAD}), answer(201, {"id": "11111111-2222-4333-8444-555555555555"}))
    run(case, answer(201, {"id": A_LEAD}), answer(400, {"case": ["Invalid pk."]}))


def test_a_filter_on_a_case_may_answer_b_an_empty_list_but_not_a_summary() -> None:
    listing = request("GET", "/api/leads/", query={"case": A_CASE})
    run(listing, answer(200, {"results": [{"id": A_LEAD}]}), answer(200, {"count": 0, "results": []}))
    summary = request("GET", "/api/analytics/summary/", query={"case": A_CASE})
    with pytest.raises(CrossAgencyLeak):
        run(summary, answer(200, {"ads": []}), answer(200, {"ads": []}), role="investigator")


def test_failed_requests_options_and_machine_callers_are_not_replayed() -> None:
    def boom(_case: Any) -> Any:
        raise AssertionError("replayed")

    detail = request("GET", f"/api/cases/{A_CASE}/", path_parameters={"id": A_CASE})
    make_cross_agency_check(role="supervisor", a_ids={A_CASE}, a_seqs=[], replay=boom)(None, answer(404), detail)
    options = request("OPTIONS", f"/api/cases/{A_CASE}/", path_parameters={"id": A_CASE})
    make_cross_agency_check(role="supervisor", a_ids={A_CASE}, a_seqs=[], replay=boom)(None, answer(200), options)
    for role in ("ingest_source", "anonymous"):
        make_cross_agency_check(role=role, a_ids={A_CASE}, a_seqs=[], replay=boom)(None, answer(200), detail)
