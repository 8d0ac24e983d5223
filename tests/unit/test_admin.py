"""Operators create users with `python -m stratus.admin create-user`."""

import io

from stratus import admin
from stratus.store.models import UserModel


def test_create_user_reads_the_password_from_stdin(tables, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert admin.main(["create-user", "carol", "--name", "Carol"]) == 0
    assert UserModel.get("carol").name == "Carol"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-1\n"))
    assert admin.main(["create-user", "carol"]) == 1  # exists already


def test_short_passwords_are_refused(tables, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert admin.main(["create-user", "dave"]) == 2
