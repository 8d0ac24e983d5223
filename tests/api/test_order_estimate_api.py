"""`POST /api/v1/services/{id}/estimate`: an order's area, validity and costs before it is placed."""

from __future__ import annotations

from tests.api.test_order_api import BOLZANO, JUNE, PARIS, customers, demo_catalog  # noqa: F401 (fixtures)

HUGE = {"type": "Polygon", "coordinates": [[[10.0, 45.0], [12.0, 45.0], [12.0, 47.0], [10.0, 47.0], [10.0, 45.0]]]}


def _estimate(customers, parameters, user="cus-carol", service="ndvi-composite"):
    return customers.request("POST", f"/services/{service}/estimate", user, json_body={"parameters": parameters})


def test_a_valid_order_is_estimated_and_nothing_is_placed(customers):
    answer = _estimate(customers, {"area": BOLZANO, **JUNE})
    assert answer.status == 200, answer.body
    estimate = answer.json()
    assert estimate["valid"] is True and estimate["problem"] is None
    assert 3.0 < estimate["area_km2"] < 3.5 and estimate["currency"] == "credits"
    assert estimate["costs"] > 0 and estimate["size_bytes"] > 0
    assert customers.request("GET", "/orders", "cus-carol").json()["orders"] == []


def test_an_order_that_cannot_succeed_is_estimated_with_its_reason(customers):
    no_data = _estimate(customers, {"area": PARIS, **JUNE}).json()
    assert no_data["valid"] is False and no_data["problem"]["code"] == "NoDataAvailable"
    too_large = _estimate(customers, {"area": HUGE, **JUNE}).json()
    assert too_large["problem"]["code"] == "AreaTooLarge" and too_large["area_km2"] > too_large["max_area_km2"]


def test_bad_parameters_and_services_out_of_scope_are_refused(customers):
    assert _estimate(customers, {"area": BOLZANO}).status == 400
    customers.add("cus-none", scopes=())
    assert _estimate(customers, {"area": BOLZANO, **JUNE}, user="cus-none").status in (403, 404)
