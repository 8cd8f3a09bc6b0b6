"""Benchmark: HTTP requests for a full and an incremental sync of N studies, against a tiny fake
API on 127.0.0.1, compared with fetching the same studies one by one.

Usage: python bench/bench_sync.py [N] [CHANGED]   (defaults 3000 studies, 40 changed)

The fake serves ``/version``, ``/studies`` (pageSize, pageToken, filter.overallStatus,
filter.advanced=AREA[LastUpdatePostDate]RANGE[date,MAX], filter.ids) and ``/studies/{id}``,
built from one real record in fixtures/ctgov. No traffic leaves the machine.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import tempfile
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from matcher.ctgov import CtgovClient
from matcher.store import Store
from matcher.sync import sync

TEMPLATE = Path(__file__).resolve().parent.parent / "fixtures" / "ctgov" / "NCT00184067.json"


class FakeApi:
    def __init__(self, n: int):
        base = json.loads(TEMPLATE.read_text(encoding="utf-8"))
        base.pop("resultsSection", None)
        self.studies: dict[str, dict] = {}
        for i in range(n):
            s = copy.deepcopy(base)
            nct = f"NCT9{i:07d}"
            s["protocolSection"]["identificationModule"]["nctId"] = nct
            s["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
            s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {
                "date": "2024-01-02",
                "type": "ACTUAL",
            }
            self.studies[nct] = s
        self.data_timestamp = f"{date.today().isoformat()}T09:00:00"
        self.requests = 0

    def touch(self, k: int) -> None:
        """Update k studies today and bump the data version (a daily refresh)."""
        today = date.today().isoformat()
        for nct in list(self.studies)[:k]:
            sm = self.studies[nct]["protocolSection"]["statusModule"]
            sm["lastUpdatePostDateStruct"] = {"date": today, "type": "ACTUAL"}
            sm["overallStatus"] = "ACTIVE_NOT_RECRUITING"
        self.data_timestamp = f"{today}T10:00:00"

    def handle(self, path: str, q: dict[str, str]) -> tuple[int, object]:
        self.requests += 1
        if path.endswith("/version"):
            return 200, {"apiVersion": "2.0.5", "dataTimestamp": self.data_timestamp}
        m = re.search(r"/studies/(NCT\d{8})$", path)
        if m:
            s = self.studies.get(m.group(1))
            return (200, s) if s else (404, "Study not found")
        rows = list(self.studies.values())
        if "filter.ids" in q:
            wanted = set(q["filter.ids"].split(","))
            rows = [
                r for r in rows if r["protocolSection"]["identificationModule"]["nctId"] in wanted
            ]
        if "filter.overallStatus" in q:
            wanted = set(q["filter.overallStatus"].split(","))
            rows = [
                r for r in rows if r["protocolSection"]["statusModule"]["overallStatus"] in wanted
            ]
        m = re.search(r"RANGE\[(\d{4}-\d{2}-\d{2}),MAX\]", q.get("filter.advanced", ""))
        if m:
            rows = [
                r
                for r in rows
                if r["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
                >= m.group(1)
            ]
        size = min(int(q.get("pageSize", "10")), 1000)
        start = int(q.get("pageToken", "tok0")[3:])
        doc: dict = {"studies": rows[start : start + size]}
        if q.get("countTotal") == "true" and "pageToken" not in q:
            doc["totalCount"] = len(rows)
        if start + size < len(rows):
            doc["nextPageToken"] = f"tok{start + size}"
        return 200, doc


def serve(api: FakeApi) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, body = api.handle(url.path, q)
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(status)
            ctype = "application/json" if not isinstance(body, str) else "text/plain"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api/v2"


def main(argv: list[str]) -> int:
    n = int(argv[1]) if len(argv) > 1 else 3000
    changed = int(argv[2]) if len(argv) > 2 else 40
    api = FakeApi(n)
    server, base = serve(api)
    try:
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "b.sqlite") as st:
            client = CtgovClient(base_url=base, min_interval=0)
            rows = []
            for label in ("full sync", "incremental (no change)", "incremental (changes)"):
                if label == "incremental (changes)":
                    api.touch(changed)
                before = api.requests
                t0 = time.perf_counter()
                res = sync(client, st, conditions=["sarcoma"])
                dt = time.perf_counter() - t0
                reqs = api.requests - before
                rows.append((label, reqs, res, dt))
            before = api.requests
            t0 = time.perf_counter()
            for nct in list(api.studies):
                client.fetch_study(nct)
            one_by_one = api.requests - before
            dt_one = time.perf_counter() - t0
    finally:
        server.shutdown()
        server.server_close()
    print(f"N = {n} studies on a local fake API (127.0.0.1); {changed} changed before run 3")
    for label, reqs, res, dt in rows:
        print(
            f"{label:25s}: {reqs:5d} requests ({res.pages} pages; added {res.added}, updated "
            f"{res.updated}, unchanged {res.unchanged}); {dt:.2f} s locally, >= {reqs - 1} s at "
            "1 request/s"
        )
    print(
        f"{'one by one':25s}: {one_by_one:5d} requests ({dt_one:.2f} s locally, >= "
        f"{one_by_one - 1} s at 1 request/s = {one_by_one / 3600:.1f} h)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
