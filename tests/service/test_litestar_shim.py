"""The one Litestar shim (svc.app.litestar_4169_options_allow): the bug it works around is still there, and the
shim fixes it. When Litestar fixes litestar-org/litestar#4169, the first test fails: remove the shim."""

from __future__ import annotations

from litestar import Litestar, get, patch
from litestar.testing import TestClient

from svc.app import litestar_4169_options_allow


@get("/thing", sync_to_thread=False)
def read_thing() -> None:
    return None


@patch("/thing", sync_to_thread=False)
def change_thing() -> None:
    return None


def _allow(app: Litestar) -> set[str]:
    with TestClient(app) as client:
        response = client.options("/thing")
    assert response.status_code == 204
    return {method.strip() for method in response.headers["allow"].split(",")}


def test_litestar_still_lists_only_one_handlers_methods_for_options() -> None:
    # The upstream bug, as the MCVE of the issue shows it: if this fails, Litestar is fixed and the shim can go.
    allowed = _allow(Litestar([read_thing, change_thing]))
    assert allowed != {"GET", "PATCH", "OPTIONS"}


def test_the_shim_lists_every_method_of_the_path() -> None:
    app = Litestar([read_thing, change_thing], before_send=[litestar_4169_options_allow()])
    assert _allow(app) == {"GET", "PATCH", "OPTIONS"}
