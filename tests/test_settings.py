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
from digest.settings import Secret, load_secret

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
