"""Secrets stay secret: no repr, str or log line shows the signing key or the SMTP password."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from digest.app import build_app
from digest.config import SmtpConfig
from digest.delivery import SmtpMailer
from digest.editorial import load_config
from digest.errors import ConfigError
from digest.settings import Secret, load_previous_secrets, load_secret

from support.deployment import write_config

KEY = "the-signing-key-" + "s" * 32
PASSWORD = "hunter2-smtp-password"


def test_a_secret_shows_stars_and_refuses_to_be_pickled() -> None:
    secret = Secret(KEY.encode())
    assert KEY not in repr(secret)
    assert KEY not in str(secret)
    assert KEY not in f"{secret}"
    assert secret.reveal() == KEY.encode()
    assert secret == Secret(KEY.encode())
    assert secret != Secret(b"other")
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)


def test_the_signing_key_from_the_data_dir_is_a_secret_too(tmp_path: Path) -> None:
    secret = load_secret({}, tmp_path)
    assert secret.reveal().decode() not in repr(secret)
    assert load_secret({}, tmp_path) == secret  # created once, read again


def test_repr_of_the_app_and_the_mailer_show_neither_key_nor_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_config(tmp_path, smtp_port=2525, web_port=8025))
    environ = {"DIGEST_SECRET_KEY": KEY, "DIGEST_SMTP_PASSWORD": PASSWORD}
    app = build_app(config, environ=environ)
    mailer = SmtpMailer(
        SmtpConfig(host="127.0.0.1", username="digest", tls="none"), password=PASSWORD
    )
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("digest.test").info("app %r mailer %r", app, mailer)
    for text in (repr(app), str(app), repr(mailer), caplog.text):
        assert KEY not in text
        assert PASSWORD not in text
    assert "password=***" in repr(mailer)
    assert app.secret == KEY.encode()  # what signs links is still the key itself
    app.store.close()


def test_previous_keys_are_read_from_a_comma_separated_list(tmp_path: Path) -> None:
    old, older = "old-key-" + "o" * 32, "older-key-" + "p" * 32
    environ = {
        "DIGEST_SECRET_KEY": KEY,
        "DIGEST_PREVIOUS_SECRET_KEYS": f" {old} ,{older},",
    }
    assert load_previous_secrets(environ) == (Secret(old.encode()), Secret(older.encode()))
    assert load_previous_secrets({}) == ()
    app = build_app(load_config(write_config(tmp_path, smtp_port=1, web_port=1)), environ=environ)
    try:
        assert app.keys.current == KEY.encode()
        assert app.keys.previous == (old.encode(), older.encode())
        assert old not in repr(app)
    finally:
        app.store.close()


def test_a_short_previous_key_is_refused_by_its_place_in_the_list() -> None:
    environ = {"DIGEST_PREVIOUS_SECRET_KEYS": "k" * 40 + ",short"}
    with pytest.raises(ConfigError, match=r"key 2 of \$DIGEST_PREVIOUS_SECRET_KEYS is 5"):
        load_previous_secrets(environ)
