"""Discovery endpoints through the real handler."""


def test_conformance_equals_capabilities(api):
    capabilities = api.get("/openeo/1.2/").json()
    conformance = api.get("/openeo/1.2/conformance").json()
    assert conformance["conformsTo"] == capabilities["conformsTo"]
    assert "https://api.openeo.org/1.2.0" in conformance["conformsTo"]
    # every listed endpoint is routed (no 404 NotFound for the listed methods)
    for endpoint in capabilities["endpoints"]:
        if "{" in endpoint["path"] or "GET" not in endpoint["methods"]:
            continue
        response = api.get(f"/openeo/1.2{endpoint['path']}", user="alice")
        assert response.status != 404 or response.json()["code"] != "NotFound", endpoint


def test_service_types_offer_xyz_tiles_of_job_results(api):
    assert set(api.get("/openeo/1.2/service_types").json()) == {"xyz"}


def test_udf_runtimes_declare_python_with_its_versions_and_libraries(api):
    runtimes = api.get("/openeo/1.2/udf_runtimes").json()
    assert list(runtimes) == ["Python"]
    python = runtimes["Python"]
    assert python["type"] == "language" and python["default"] in python["versions"]
    assert set(python["versions"]) == {"3", "3.11"}
    for version in python["versions"].values():
        assert {"numpy", "xarray", "pandas", "openeo"} <= set(version["libraries"])
        assert all(library["version"] for library in version["libraries"].values())


def test_queryables_of_an_unknown_collection(api):
    response = api.get("/openeo/1.2/collections/nope/queryables")
    assert response.status == 404 and response.json()["code"] == "CollectionNotFound"
