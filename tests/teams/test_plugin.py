"""Registration: the plugin loads without PyJWT; the config keeps the secret secret."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from botkit_plugins.teams import TeamsConfig


def test_loading_the_plugins_does_not_import_jwt_or_the_adapter():
    code = ("import sys; from botkit.plugins import load_plugins; p = load_plugins(); "
            "assert p.adapters['teams'].target == 'botkit_plugins.teams.adapter:TeamsAdapter'; "
            "print(sorted(m for m in ('jwt', 'cryptography', 'botkit_plugins.teams.adapter') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_hides_the_password_and_enforces_teams_limits():
    config = TeamsConfig(app_id="a", app_password="hunter2-secret")
    assert "hunter2-secret" not in repr(config) and "hunter2-secret" not in str(config.model_dump())
    with pytest.raises(ValidationError):
        TeamsConfig(app_id="a", app_password="x", edit_interval=1.0)
    with pytest.raises(ValidationError):
        TeamsConfig(app_id="a", app_password="x", unknown_key=1)
