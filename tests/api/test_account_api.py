"""`GET /me` tells who the caller is and how much of their workspace is free."""


def test_me_shows_the_caller_and_storage(api):
    before = api.get("/openeo/1.2/me", user="alice").json()
    assert before["user_id"] == "alice" and before["storage"]["free"] == before["storage"]["quota"] > 0
    assert api.put("/openeo/1.2/files/a.bin", user="alice", data=b"x" * 1000,
                   content_type="application/octet-stream").status == 200
    after = api.get("/openeo/1.2/me", user="alice").json()
    assert after["storage"]["free"] == before["storage"]["free"] - 1000
    # bob's account is untouched by alice's files
    assert api.get("/openeo/1.2/me", user="bob").json()["storage"]["free"] == before["storage"]["quota"]


def test_me_requires_authentication(api):
    assert api.get("/openeo/1.2/me").json()["code"] == "AuthenticationRequired"
