# SPDX-License-Identifier: Apache-2.0
"""Managing webhooks over the API (issue 7, docs/webhooks.md): create, list,
change and delete subscriptions with their validation; a 410 disables and
PATCH active=true enables again; a dead delivery writes delivery.failed
(never one for a dead delivery.failed) and, redriven, is delivered with
the same webhook-id; the CLI lists and redrives."""
import json
import time

from conftest import Server
from test_webhooks import SECRET, Receiver, send, wait

JSON = {"Content-Type": "application/json"}
OTHER = "second-secret-0123456789"


def start(tmp, config_url=None, scale="0.00001"):
    s = Server(tmp)
    text = open(s.config).read()
    if config_url:
        text = text.replace(
            "  - name: acme\n", "  - name: acme\n    webhooks:\n"
            "      - url: %s\n        secrets: [\"%s\"]\n"
            "        events: [ticket.created]\n" % (config_url, SECRET), 1)
    text = ("webhooks_allow_private: true\nwebhook_retry_scale: %s\n" % scale
            + text)
    open(s.config, "w").write(text)
    return s.start()


def call(s, method, path, token, obj=None, raw=None):
    body = raw if raw is not None else (
        json.dumps(obj).encode() if obj is not None else None)
    st, hdrs, data = s.http_call(method, path, body, token,
                                 JSON if body is not None else None)
    return st, hdrs, (json.loads(data) if data else None)


def create(s, token, url, **kw):
    obj = {"url": url, "secrets": kw.pop("secrets", [SECRET])}
    obj.update(kw)
    st, hdrs, doc = call(s, "POST", "/api/v1/webhooks", token, obj)
    assert st == 201, doc
    return hdrs, doc


def events_of(s, token, type_):
    st, page = s.json_call("GET", "/api/v1/events?after=0&limit=1000",
                           token)
    assert st == 200
    return [e for e in page["events"] if e["type"] == type_]


def test_crud_validation_and_scope(tmpdir_path):
    cfg = Receiver()
    s = start(tmpdir_path, config_url=cfg.url)
    try:
        admin = s.token()
        hdrs, w = create(s, admin, "https://hooks.example.test/a",
                         events=["ticket.created", "message.added"],
                         secrets=[SECRET, OTHER])
        assert hdrs["Location"] == "/api/v1/webhooks/%d" % w["id"]
        assert w["events"] == ["ticket.created", "message.added"]
        assert w["active"] is True and w["source"] == "api"
        assert w["disabled_at"] is None
        assert w["secrets"] == [{"hint": "..." + SECRET[-4:]},
                                {"hint": "..." + OTHER[-4:]}]
        raw = json.dumps(w)
        assert SECRET not in raw and OTHER not in raw

        st, _, one = call(s, "GET", "/api/v1/webhooks/%d" % w["id"], admin)
        assert st == 200 and one == w
        st, _, page = call(s, "GET", "/api/v1/webhooks", admin)
        by_url = {x["url"]: x for x in page["webhooks"]}
        assert set(by_url) == {cfg.url, "https://hooks.example.test/a"}
        assert by_url[cfg.url]["source"] == "config"

        # validation: each names its field
        bad = [
            ({"url": "ftp://x.test/", "secrets": [SECRET]}, "url"),
            ({"url": "https://user:pw@x.test/", "secrets": [SECRET]}, "url"),
            ({"url": "https:///nohost", "secrets": [SECRET]}, "url"),
            ({"url": "https://x.test/", "secrets": [SECRET],
              "events": ["ticket.exploded"]}, "events"),
            ({"url": "https://x.test/", "secrets": [SECRET], "events": []},
             "events"),
            ({"url": "https://x.test/", "secrets": []}, "secrets"),
            ({"url": "https://x.test/", "secrets": [SECRET, OTHER, SECRET]},
             "secrets"),
            ({"url": "https://x.test/", "secrets": ["short"]}, "secrets"),
            ({"url": "https://x.test/", "secrets": ["whsec_***notbase64***"]},
             "secrets"),
            ({"url": "https://x.test/"}, "secrets"),
            ({"secrets": [SECRET]}, "url"),
            ({"url": "https://x.test/", "secrets": [SECRET],
              "active": "yes"}, "active"),
            ({"url": "https://x.test/", "secrets": [SECRET], "colour": 1},
             "colour"),
        ]
        for obj, field in bad:
            st, hdrs, doc = call(s, "POST", "/api/v1/webhooks", admin, obj)
            assert st == 422, (obj, doc)
            assert doc["field"] == field, (obj, doc)
            assert hdrs["Content-Type"] == "application/problem+json"
        st, _, doc = call(s, "POST", "/api/v1/webhooks", admin, raw=b"{nope")
        assert st == 400 and doc["status"] == 400
        st, _, doc = call(s, "POST", "/api/v1/webhooks", admin, raw=b"[1]")
        assert st == 400
        # the same url twice
        st, _, doc = call(s, "POST", "/api/v1/webhooks", admin,
                          {"url": "https://hooks.example.test/a",
                           "secrets": [SECRET]})
        assert st == 409, doc

        # roles and tenants
        reader = s.token(role="read")
        st, _, _ = call(s, "GET", "/api/v1/webhooks", reader)
        assert st == 403
        st, _, _ = call(s, "GET", "/api/v1/deliveries", reader)
        assert st == 403
        globex = s.token(tenant="globex")
        st, _, _ = call(s, "GET", "/api/v1/webhooks/%d" % w["id"], globex)
        assert st == 404
        st, _, page = call(s, "GET", "/api/v1/webhooks", globex)
        assert page["webhooks"] == []
        st, _, _ = call(s, "DELETE", "/api/v1/webhooks/%d" % w["id"], globex)
        assert st == 404

        # PATCH: any field; events null means every type
        path = "/api/v1/webhooks/%d" % w["id"]
        st, _, p = call(s, "PATCH", path, admin,
                        {"events": None, "secrets": [OTHER], "active": False,
                         "url": "https://hooks.example.test/b"})
        assert st == 200, p
        assert p["events"] is None and p["active"] is False
        assert p["url"] == "https://hooks.example.test/b"
        assert p["secrets"] == [{"hint": "..." + OTHER[-4:]}]
        st, _, p = call(s, "PATCH", path, admin, {"events": ["nope"]})
        assert st == 422 and p["field"] == "events"
        st, _, p = call(s, "PATCH", path, admin, {"url": cfg.url})
        assert st == 409, p

        # the configuration's subscription is read-only here
        cid = by_url[cfg.url]["id"]
        st, _, p = call(s, "PATCH", "/api/v1/webhooks/%d" % cid, admin,
                        {"events": None})
        assert st == 409 and "configuration" in p["detail"]
        st, _, p = call(s, "DELETE", "/api/v1/webhooks/%d" % cid, admin)
        assert st == 409

        st, _, _ = call(s, "DELETE", path, admin)
        assert st == 204
        st, _, _ = call(s, "GET", path, admin)
        assert st == 404
        st, _, _ = call(s, "DELETE", path, admin)
        assert st == 404

        r = s.cli("webhooks", "list")
        out = r.stdout.decode()
        assert r.returncode == 0, r.stderr
        assert cfg.url in out and "config" in out
        assert "hooks.example.test" not in out
    finally:
        assert s.stop() in (0, None)
        cfg.close()


def test_410_disables_then_patch_enables(tmpdir_path):
    rcv = Receiver([410])
    s = start(tmpdir_path)
    try:
        admin = s.token()
        _, w = create(s, admin, rcv.url, events=["ticket.created"])
        path = "/api/v1/webhooks/%d" % w["id"]
        send(s, "first")
        assert wait(lambda: len(rcv.hits) >= 1)

        def disabled():
            _, _, x = call(s, "GET", path, admin)
            return x["disabled_at"] is not None
        assert wait(disabled)
        _, _, x = call(s, "GET", path, admin)
        assert "410" in x["disabled_reason"] and x["active"] is True
        send(s, "second")
        time.sleep(1.0)
        assert len(rcv.hits) == 1, "a 410 must stop deliveries"

        st, _, x = call(s, "PATCH", path, admin, {"active": True})
        assert st == 200
        assert x["disabled_at"] is None and x["disabled_reason"] is None
        # the 410'd event is sent again, then the one that waited
        assert wait(lambda: len(rcv.hits) >= 3), rcv.hits
        ids = [h["webhook-id"] for h, _ in rcv.hits]
        assert ids[0] in ids[1:3] and len(set(ids[1:3])) == 2, ids
    finally:
        assert s.stop() in (0, None)
        rcv.close()


def test_dead_delivery_failed_event_and_redrive(tmpdir_path):
    bad = Receiver([500] * 1000)
    watcher = Receiver()
    s = start(tmpdir_path)
    try:
        admin = s.token()
        # the failing receiver also wants delivery.failed: the one about
        # itself dies too, and must not make another
        _, w = create(s, admin, bad.url,
                      events=["ticket.created", "delivery.failed"])
        _, w2 = create(s, admin, watcher.url, events=["delivery.failed"])
        send(s, "doomed")

        def dead():
            st, _, page = call(
                s, "GET", "/api/v1/deliveries?state=dead&webhook_id=%d"
                % w["id"], admin)
            assert st == 200
            return page["deliveries"]
        assert wait(lambda: len(dead()) >= 2, timeout=60), dead()
        time.sleep(1.0)
        failed = events_of(s, admin, "delivery.failed")
        assert len(failed) == 1, failed
        d = [x for x in dead() if x["event_type"] == "ticket.created"][0]
        assert d["attempts"] == 8 and d["state"] == "dead"
        assert d["last_error"] and d["next_attempt_at"] is None
        p = failed[0]["payload"]
        assert p["delivery_id"] == d["id"] and p["webhook_id"] == w["id"]
        assert p["url"] == bad.url and p["event_id"] == d["event_id"]
        assert p["event_type"] == "ticket.created" and p["attempts"] == 8
        assert p["last_error"] == d["last_error"]
        assert failed[0]["ticket_id"] == d["ticket_id"]
        # the other subscriber got it
        assert wait(lambda: len(watcher.hits) >= 1)
        got = json.loads(watcher.hits[0][1])
        assert got["type"] == "delivery.failed"
        assert got["payload"]["delivery_id"] == d["id"]

        first_id = bad.hits[0][0]["webhook-id"]
        assert first_id == d["event_id"]
        # a pending one cannot be redriven; an unknown one is 404
        st, _, _ = call(s, "POST", "/api/v1/deliveries/999999/redrive", admin)
        assert st == 404
        bad.script.clear()  # the receiver is back
        n = len(bad.hits)
        st, _, x = call(s, "POST", "/api/v1/deliveries/%d/redrive" % d["id"],
                        admin)
        assert st == 202 and x["state"] == "pending" and x["attempts"] == 0
        assert wait(lambda: len(bad.hits) > n)
        assert bad.hits[n][0]["webhook-id"] == first_id

        def delivered():
            _, _, x = call(s, "GET", "/api/v1/deliveries/%d" % d["id"], admin)
            return x["state"] == "delivered"
        assert wait(delivered)
        # redriving a pending one is a conflict (the watcher's, delivered,
        # is sent again on request)
        st, _, page = call(s, "GET", "/api/v1/deliveries?state=delivered"
                           "&webhook_id=%d" % w2["id"], admin)
        wd = page["deliveries"][0]
        st, _, x = call(s, "POST", "/api/v1/deliveries/%d/redrive" % wd["id"],
                        admin)
        assert st == 202
        st, _, x = call(s, "POST", "/api/v1/deliveries/%d/redrive" % wd["id"],
                        admin)
        assert st in (202, 409)  # 409 while pending; 202 once delivered
        globex = s.token(tenant="globex")
        st, _, _ = call(s, "GET", "/api/v1/deliveries/%d" % d["id"], globex)
        assert st == 404

        # paging: oldest first, next_after
        st, _, page = call(s, "GET", "/api/v1/deliveries?limit=1", admin)
        assert st == 200 and len(page["deliveries"]) == 1
        after = page["next_after"]
        assert after == page["deliveries"][0]["id"]
        st, _, page2 = call(s, "GET", "/api/v1/deliveries?limit=1&after=%d"
                            % after, admin)
        assert page2["deliveries"][0]["id"] > after
        st, _, _ = call(s, "GET", "/api/v1/deliveries?state=lost", admin)
        assert st == 400

        # the CLI: list the dead one left (the delivery.failed one) and
        # redrive it
        r = s.cli("deliveries", "list", "--state", "dead", "--tenant", "acme")
        assert r.returncode == 0, r.stderr
        lines = [l for l in r.stdout.decode().splitlines()[1:] if l.strip()]
        assert len(lines) == 1 and "delivery.failed" in lines[0], lines
        did = lines[0].split()[0]
        r = s.cli("deliveries", "redrive", did)
        assert r.returncode == 0, r.stderr
        r = s.cli("deliveries", "redrive", did)
        assert r.returncode != 0  # pending now
        assert wait(lambda: dead() == [])
    finally:
        assert s.stop() in (0, None)
        bad.close()
        watcher.close()
