"""Outages over the API: what ``ordernimbus outage`` does, for the credential's tenant only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from realcuts import store_item_cut
from serving_world import World, assert_problem

from features.lake import SalesLake
from features.outages import Outage

pytestmark = pytest.mark.integration


def test_mark_list_and_unmark_an_outage(world: World, client: TestClient) -> None:
    cut = store_item_cut(stores=2, items=2, since="2017-10-01")
    cut = cut[(cut["date"] < "2017-11-10") | (cut["date"] > "2017-11-16")]  # a week lost everywhere
    SalesLake(world.settings.lake_dir).upsert(world.a.name, cut, source="test")
    analyst = {"X-API-Key": world.a.keys["analyst"]}
    week = {"first": "2017-11-10", "last": "2017-11-16"}

    made = client.post("/v1/outages", headers=analyst, json=week)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["first"], body["last"], body["store"], body["created"]) == (*week.values(), None, True)
    assert (body["periods"], body["unit"], body["series"], body["records"]) == (7, "days", 4, 0)
    again = client.post("/v1/outages", headers=analyst, json=week)
    assert again.status_code == 201
    assert again.json()["created"] is False  # marked already: nothing changed
    assert SalesLake(world.settings.lake_dir).outages(world.a.name) == [Outage.parse(*week.values())]

    viewer = {"X-API-Key": world.a.keys["viewer"]}
    listed = client.get("/v1/outages", headers=viewer)
    assert listed.status_code == 200
    assert [(o["first"], o["series"]) for o in listed.json()] == [("2017-11-10", 4)]
    assert client.post("/v1/outages", headers=viewer, json=week).status_code == 403

    backwards = client.post(
        "/v1/outages", headers=analyst, json={"first": "2017-11-16", "last": "2017-11-10"}
    )
    assert "last date is before the first" in assert_problem(backwards, 400)["detail"]
    nowhere = client.post("/v1/outages", headers=analyst, json={**week, "store": "99"})
    assert "has no store '99'" in assert_problem(nowhere, 400)["detail"]
    assert_problem(client.post("/v1/outages", headers=analyst, json={**week, "extra": 1}), 422)
    assert_problem(client.post("/v1/outages", headers=analyst, json={**week, "first": 1510272000}), 422)
    # a date pandas cannot count to was stored once, and every later list of the tenant's outages failed
    for first, last in (("2262-04-11", "2262-04-12"), ("0001-01-01", "9999-12-31")):
        far = client.post("/v1/outages", headers=analyst, json={"first": first, "last": last})
        assert "between 1900-01-01 and 2199-12-31" in assert_problem(far, 400)["detail"]
        assert_problem(
            client.delete("/v1/outages", headers=analyst, params={"first": first, "last": last}), 400
        )
    assert [o["first"] for o in client.get("/v1/outages", headers=viewer).json()] == ["2017-11-10"]

    gone = client.delete("/v1/outages", headers=analyst, params=week)
    assert gone.status_code == 200, gone.text
    assert gone.json()["first"] == "2017-11-10"
    assert SalesLake(world.settings.lake_dir).outages(world.a.name) == []
    assert_problem(client.delete("/v1/outages", headers=analyst, params=week), 404)
