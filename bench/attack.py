"""Attack run: API faults, SIGKILLs and bad inputs against sync, the store, import and normalize.

Usage: python bench/attack.py [FAULTS] [KILLS] [SEED]   (defaults 200 faults, 20 kills, seed 1)

1. API faults: a fake API on 127.0.0.1 (bench/bench_sync.py) answers a share of requests with
   503, 429, 500, an HTML page, truncated JSON, an empty body, JSON nested 100,000 deep, or a
   dropped connection. ``sync`` is re-run until it finishes; then the store must hold exactly
   the API's open studies, once each, and pass ``PRAGMA integrity_check``. A study withdrawn
   from the API must end up marked and not offered.
2. SIGKILLs: ``trialmatch sync`` in a subprocess, killed at a random moment, again and again,
   then run to the end: same checks.
3. Bad inputs: hostile cells in every numeric field, a CSV cut at every byte, a CSV with a bad
   quote on each row, deep and huge-number JSON, look-alike ids, hostile XML in four encodings,
   trial records with non-finite numbers then matched. Handled = a named error or a warning for
   that patient/record, or the exact value; not handled = a traceback or a silent change.

Prints the figures; asserts nothing. No traffic leaves the machine.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sync import FakeApi, serve  # noqa: E402

from matcher.ctgov import CtgovClient  # noqa: E402
from matcher.errors import ApiError, InputError, PatientError  # noqa: E402
from matcher.patient import normalize_record, read_patients  # noqa: E402
from matcher.records import classic_xml_to_v2, iter_records  # noqa: E402
from matcher.store import Store  # noqa: E402
from matcher.sync import sync  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 6, 1)
FAULTS = ["503", "429", "500", "html", "truncated", "empty", "deep", "drop"]


class FaultyApi(FakeApi):
    """The fake API, with faults injected on a share of /studies requests."""

    def __init__(self, n: int, rng: random.Random, rate: float):
        super().__init__(n)
        self.rng, self.rate = rng, rate
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.budget = 0

    def fault(self, path: str) -> str | None:
        if self.budget <= 0 or not path.endswith("/studies") or self.rng.random() > self.rate:
            return None
        self.budget -= 1
        kind = self.rng.choice(FAULTS)
        self.injected[kind] += 1
        return kind


def serve_faulty(api: FaultyApi):
    """Like bench_sync.serve, with the faults applied at the HTTP level."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread
    from urllib.parse import parse_qs, urlparse

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            url = urlparse(self.path)
            kind = api.fault(url.path)
            if kind == "drop":
                self.connection.close()
                return
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, body = api.handle(url.path, q)
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            ctype = "application/json"
            if kind in ("503", "429", "500"):
                status, data = int(kind), b"busy"
            elif kind == "html":
                data, ctype = b"<!DOCTYPE html><html>maintenance</html>", "text/html"
            elif kind == "truncated":
                data = data[: len(data) // 2]
            elif kind == "empty":
                data = b""
            elif kind == "deep":
                data = b"[" * 100_000 + b"]" * 100_000
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api/v2"


def refresh(api: FakeApi, k: int) -> None:
    """The registry's daily refresh: k studies change and the data version moves on. (The fake's
    page tokens are offsets, so without a new dataTimestamp a resumed run would skip rows;
    the real API ties its tokens to the data version, which sync checks.)"""
    api.touch(k)
    refresh.n = getattr(refresh, "n", 0) + 1
    api.data_timestamp = (
        f"{date.today().isoformat()}T{10 + refresh.n // 60:02d}:{refresh.n % 60:02d}:00"
    )


def check_store(path: Path, api: FakeApi) -> tuple[int, int, str]:
    """(lost, extra, integrity) of the store against the API's open studies."""
    want = {
        n
        for n, s in api.studies.items()
        if s["protocolSection"]["statusModule"]["overallStatus"] == "RECRUITING"
    }
    with Store(path) as st:
        have = set(st.nct_ids({"RECRUITING"}))
        integrity = st.connection.execute("PRAGMA integrity_check").fetchone()[0]
    return len(want - have), len(have - want), integrity


def attack_faults(n_faults: int, rng: random.Random) -> dict:
    api = FaultyApi(3000, rng, rate=0.5)
    api.budget = n_faults
    server, base = serve_faulty(api)
    runs = failed = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "f.sqlite"
            client = CtgovClient(base_url=base, min_interval=0, max_retries=2, sleep=lambda s: None)
            # first a clean full sync, then faulty full and incremental runs until the budget is spent
            while api.budget > 0 or runs == 0:
                for full in (True, False):
                    runs += 1
                    with Store(db) as st:
                        try:
                            sync(client, st, conditions=["sarcoma"], full=full and runs % 4 == 1)
                        except ApiError:
                            failed += 1
                    refresh(api, rng.randint(0, 30))
            api.budget = 0
            with Store(db) as st:  # the run that finishes
                sync(client, st, conditions=["sarcoma"])
            withdrawn = next(
                n
                for n, s in reversed(api.studies.items())
                if s["protocolSection"]["statusModule"]["overallStatus"] == "RECRUITING"
            )
            del api.studies[withdrawn]
            with Store(db) as st:
                res = sync(client, st, conditions=["sarcoma"], full=True)
                marked = [m["nct_id"] for m in st.missing()] == [withdrawn]
            lost, extra, integrity = check_store(db, api)
    finally:
        server.shutdown()
        server.server_close()
    return {
        "injected": sum(api.injected.values()),
        "by_kind": api.injected,
        "runs": runs,
        "runs_failed_then_resumed": failed,
        "lost": lost,
        "extra": extra,
        "integrity": integrity,
        "withdrawn_marked": marked and res.missing == 1,
    }


def attack_kills(n_kills: int, rng: random.Random) -> dict:
    api = FakeApi(6000)
    server, base = serve(api)
    server.handle_error = lambda *args: None  # a killed client resets its connection: expected
    survived = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "k.sqlite"
            cmd = [sys.executable, "-m", "matcher", "--db", str(db), "--api-url", base, "sync"]
            cmd += ["--condition", "sarcoma", "--min-interval", "0"]
            env = {**os.environ, "PYTHONWARNINGS": "ignore"}
            for _ in range(n_kills):
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
                )
                time.sleep(rng.uniform(0.5, 4.0))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                proc.wait()
                lock = db.with_name(db.name + ".lock")
                with sqlite3.connect(db) as raw:
                    ok = raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                survived += ok
                if rng.random() < 0.3:
                    refresh(api, rng.randint(1, 50))
                _ = lock
            final = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lost, extra, integrity = check_store(db, api)
    finally:
        server.shutdown()
        server.server_close()
    return {
        "kills": n_kills,
        "integrity_ok_after_kill": survived,
        "final_exit": final.returncode,
        "final_stderr": final.stderr.strip()[-200:],
        "lost": lost,
        "extra": extra,
        "integrity": integrity,
    }


def attack_report_kills(n_kills: int, rng: random.Random) -> dict:
    """``trialmatch report`` on the demo killed at random moments, then run to the end."""
    with tempfile.TemporaryDirectory() as tmp:
        db, out = Path(tmp) / "r.sqlite", Path(tmp) / "out"
        cmd = [sys.executable, "-m", "matcher", "--db", str(db), "report"]
        cmd += [str(ROOT / "fixtures" / "demo" / "patients.csv"), "--out", str(out)]
        cmd += ["--trials", str(ROOT / "fixtures" / "demo" / "trials"), "--status", "any"]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        first = subprocess.run(cmd, capture_output=True, env=env)
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env)
        report_seconds = 0.9 * (time.perf_counter() - t0)  # kill somewhere inside a run
        stale_seen = killed = tmp_seen = running_seen = 0
        for _ in range(n_kills):
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
            time.sleep(rng.uniform(0.3, report_seconds))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            page = (out / "report.html").read_text(encoding="utf-8")
            killed += proc.returncode == -signal.SIGKILL
            stale_seen += proc.returncode == -signal.SIGKILL and "data-stale-banner" in page
            tmp_seen += bool(list(out.glob("*.tmp")))
            with sqlite3.connect(db) as raw:
                running_seen += raw.execute(
                    "SELECT COUNT(*) FROM report_runs WHERE status='running'"
                ).fetchone()[0]
        final = subprocess.run(cmd, capture_output=True, env=env)
        with sqlite3.connect(db) as raw:
            integrity = raw.execute("PRAGMA integrity_check").fetchone()[0]
            running = raw.execute("SELECT COUNT(*) FROM report_runs WHERE status='running'")
            running = running.fetchone()[0]
        page = (out / "report.html").read_text(encoding="utf-8")
        return {
            "kills": killed,
            "first_exit": first.returncode,
            "killed_with_banner": stale_seen,
            "final_exit": final.returncode,
            "tmp_left": len(list(out.glob("*.tmp"))),
            "kills_leaving_tmp": tmp_seen,
            "kills_leaving_running_row": running_seen,
            "running_rows": running,
            "banner_after_final": "data-stale-banner" in page,
            "integrity": integrity,
        }


def attack_inputs(tmp: Path) -> dict:
    tried = handled = 0
    failures: list[str] = []

    def outcome(label: str, ok: bool) -> None:
        nonlocal tried, handled
        tried += 1
        handled += ok
        if not ok:
            failures.append(label if len(label) <= 60 else label[:57] + "...")

    # hostile cells in every numeric field
    hostile = ["NaN", "inf", "-inf", "1e400", "9" * 400, math.nan, math.inf, "", "\u200b", "٣"]
    for field in ("ecog", "karnofsky", "lansky", "lung_metastases_count", "age", "lat", "anc"):
        for value in hostile:
            raw = {"id": "p1", field: value, **({"lon": 1.0} if field == "lat" else {})}
            try:
                p = normalize_record(raw, as_of=AS_OF)
                got = p.labs.get("anc") if field == "anc" else getattr(p, field)
                outcome(f"{field}={value!r}", got is None or math.isfinite(got))
            except PatientError:
                outcome(f"{field}={value!r}", True)
            except Exception as exc:  # noqa: BLE001 - what the attack counts
                outcome(f"{field}={value!r}: {type(exc).__name__}", False)

    # a CSV cut at every byte: each patient read is exact or warned about
    full = (ROOT / "fixtures" / "demo" / "patients.csv").read_bytes()
    path = tmp / "cut.csv"
    path.write_bytes(full)
    whole = {p.id: p.to_dict() for p in read_patients(path, as_of=AS_OF).patients}
    for cut in range(len(full.split(b"\n", 1)[0]) + 1, len(full)):
        path.write_bytes(full[:cut])
        try:
            batch = read_patients(path, as_of=AS_OF)
        except InputError:
            outcome(f"cut at {cut}", True)
            continue
        except Exception as exc:  # noqa: BLE001
            outcome(f"cut at {cut}: {type(exc).__name__}", False)
            continue
        ok = True
        for p in batch.patients:
            d = {**p.to_dict(), "source": None, "warnings": None}
            w = {**whole.get(p.id, {}), "source": None, "warnings": None}
            if d != w and not any("without a line break" in x for x in p.warnings):
                ok = False
        outcome(f"cut at {cut}", ok)

    # a bad quote in each row: that row is an error, every other row is read
    lines = full.decode().splitlines()
    for i in range(1, len(lines)):
        bad = lines[:i] + [lines[i].replace(",", ',"x"y,', 1)] + lines[i + 1 :]
        path.write_text("\n".join(bad) + "\n", encoding="utf-8")
        try:
            batch = read_patients(path, as_of=AS_OF)
            outcome(f"quote row {i}", len(batch.patients) + len(batch.errors) == len(lines) - 1)
        except Exception as exc:  # noqa: BLE001
            outcome(f"quote row {i}: {type(exc).__name__}", False)

    # deep / huge JSON, look-alike ids
    for name, text in [
        ("deep list", "[" * 100_000 + "]" * 100_000),
        ("deep object", '{"a":' * 100_000 + "1" + "}" * 100_000),
        ("5000-digit int", "1" * 5000),
        ("ids", json.dumps([{"id": "p1"}, {"id": "p1\u200b"}, {"id": "\u04401"}, {"id": "P1"}])),
    ]:
        path = tmp / "p.json"
        path.write_text(text, encoding="utf-8")
        try:
            batch = read_patients(path, as_of=AS_OF)
            ok = (
                name == "ids"
                and len(batch.errors) == 1
                and all(p.warnings for p in batch.patients[1:])
            )
            outcome(name, ok)
        except InputError:
            outcome(name, True)
        except Exception as exc:  # noqa: BLE001
            outcome(f"{name}: {type(exc).__name__}", False)

    # hostile XML in four encodings and after a long comment
    bomb = '<!DOCTYPE c [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
    body = "<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info>&b;</clinical_study>"
    decl = '<?xml version="1.0" encoding="UTF-16"?>'
    for label, data in [
        ("utf8", (bomb + body).encode()),
        ("utf16le", (decl + bomb + body).encode("utf-16-le")),
        ("utf16be", (decl + bomb + body).encode("utf-16-be")),
        ("utf16 bom", (decl + bomb + body).encode("utf-16")),
        ("long comment", ("<!--" + "x" * 8192 + "-->" + bomb + body).encode()),
    ]:
        try:
            classic_xml_to_v2(data, "x.xml")
            outcome(f"xml {label}", False)
        except Exception as exc:  # noqa: BLE001
            outcome(f"xml {label}", "DOCTYPE" in str(exc))

    # trial records with non-finite numbers, then matched
    rec = json.loads((ROOT / "fixtures" / "trials" / "v2" / "NCT02576665.json").read_text())
    rec["protocolSection"]["contactsLocationsModule"]["locations"][0]["geoPoint"] = {
        "lat": 1e400,
        "lon": math.nan,
    }
    rec["protocolSection"]["eligibilityModule"]["maximumAge"] = "9" * 400 + " Years"
    (tmp / "bad.json").write_text(json.dumps(rec), encoding="utf-8")
    (tmp / "pt.json").write_text(json.dumps([{"id": "a", "diagnosis": "synovial sarcoma",
                                               "zip": "10065"}]))  # fmt: skip
    db = str(tmp / "m.sqlite")
    base = [sys.executable, "-m", "matcher", "--db", db]
    r1 = subprocess.run([*base, "import", str(tmp / "bad.json")], capture_output=True)
    r2 = subprocess.run(
        [*base, "match", str(tmp / "pt.json"), "--status", "any", "--json"], capture_output=True
    )
    outcome("match on a record with lat 1e400", r1.returncode == 0 and r2.returncode == 0)
    items = list(iter_records(tmp / "bad.json"))
    outcome("import of a record with lat 1e400", all(i.ok for i in items))
    return {"tried": tried, "handled": handled, "not_handled": failures[:10]}


def main(argv: list[str]) -> int:
    n_faults = int(argv[1]) if len(argv) > 1 else 200
    n_kills = int(argv[2]) if len(argv) > 2 else 20
    rng = random.Random(int(argv[3]) if len(argv) > 3 else 1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = attack_inputs(Path(tmp))
    print(f"bad inputs: {inputs['handled']} of {inputs['tried']} handled; not handled: "
          f"{inputs['not_handled'] or 'none'}")  # fmt: skip
    faults = attack_faults(n_faults, rng)
    print(
        f"API faults: {faults['injected']} injected ({faults['by_kind']}) over {faults['runs']} "
        f"sync runs ({faults['runs_failed_then_resumed']} gave up and were resumed); studies "
        f"lost {faults['lost']}, extra {faults['extra']}; integrity {faults['integrity']}; "
        f"withdrawn study marked and not offered: {faults['withdrawn_marked']}"
    )
    kills = attack_kills(n_kills, rng)
    print(
        f"SIGKILLs: {kills['kills']} (integrity ok after {kills['integrity_ok_after_kill']}); "
        f"final run exit {kills['final_exit']}; studies lost {kills['lost']}, extra "
        f"{kills['extra']}; integrity {kills['integrity']}"
    )
    if kills["final_exit"]:
        print(f"  final run stderr: {kills['final_stderr']}")
    rk = attack_report_kills(max(1, n_kills // 2), rng)
    print(
        f"report SIGKILLs: {rk['kills']} ({rk['killed_with_banner']} left the old report "
        "bannered, the others died before opening the store); "
        f"{rk['kills_leaving_tmp']} left .tmp files and {rk['kills_leaving_running_row']} a "
        f"'running' row; after the final run (exit {rk['final_exit']}): .tmp files "
        f"{rk['tmp_left']}, rows running {rk['running_rows']}, banner "
        f"{rk['banner_after_final']}; integrity {rk['integrity']}"
    )
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
