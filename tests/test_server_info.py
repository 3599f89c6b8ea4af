"""Every server names itself `alphaavatar-<name>` and reports the package version in `initialize`."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.conftest import SERVERS, Surface


@pytest.mark.parametrize("server", SERVERS)
def test_initialize_reports_name_and_version(server: str, surfaces: dict[str, Surface]) -> None:
    info = surfaces[server].info
    assert info.name == f"alphaavatar-{server}"
    assert info.version == version("alphaavatar") != ""
