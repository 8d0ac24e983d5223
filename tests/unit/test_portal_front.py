"""The local front's doors beside the API: `/tiles/` to the tiles function, `/portal/` to the built files."""

from __future__ import annotations

from werkzeug.test import Client
from werkzeug.wrappers import Response

from stratus_local.portal_front import PortalFront


def _answering(name: str):
    return lambda environ, start_response: Response(name)(environ, start_response)


def _front(dist) -> Client:
    return Client(PortalFront(_answering("api"), _answering("tiles"), dist))


def test_requests_go_to_the_api_the_tiles_function_or_the_portal(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>portal</title>")
    (tmp_path / "main.js").write_text("console.log(1)")
    client = _front(tmp_path)
    assert client.get("/openeo/1.2/").get_data(as_text=True) == "api"
    assert client.get("/portalx").get_data(as_text=True) == "api"
    assert client.get("/tiles/s-1/0/0/0.png").get_data(as_text=True) == "tiles"
    assert client.get("/portal").headers["Location"].endswith("/portal/")
    assert "portal" in client.get("/portal/").get_data(as_text=True)
    assert client.get("/portal/main.js").status_code == 200
    # the local portal calls the API on its own origin, with the offline base layer only
    assert client.get("/portal/config.json").json == {"api": "", "baseLayer": None}


def test_an_unbuilt_portal_says_how_to_build_it(tmp_path):
    answer = _front(tmp_path / "dist").get("/portal/")
    assert answer.status_code == 404 and "make portal" in answer.get_data(as_text=True)
