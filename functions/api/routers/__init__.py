"""The API Lambda's routes, grouped by API.

- `openeo/`: the openEO API v1.2 under `/openeo/1.2` (one module per area: jobs, files, ...).
- `orders/`: the order-service API under `/api/v1`; `offerings.py` serves `/services`, what customers can
  order (called offerings in code, so they are not mistaken for service classes such as `JobService`).
- `shared/`: what both use: the caller middleware (`caller.py`), errors, request checks, request helpers.
Each API's `caller.py` reads its `Authorization` header and turns refusals into its own errors.
"""
