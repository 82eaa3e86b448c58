"""A flood of sign-ins stays within the password-hashing cap: no 5xx, bounded memory."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from rtportal.access.passwords import Hashing, HashParams
from rtportal.db.models import Firm, StaffUser
from rtportal.errors import RateLimited
from rtportal.settings import Settings
from tests.conftest import TEST_SECRET_HEX, MakeFirm
from tests.support.logins import give_password, signin_body
from tests.support.worker import Worker, worker_env

PASSWORD = "flood test password"
FLOOD = 200
HASH_MEMORY_KIB = 16 * 1024  # each running hash holds 16 MiB
CONCURRENCY = 4
QUEUE = 32


async def test_the_cap_holds_in_process() -> None:
    hashing = Hashing(HashParams(memory_kib=1024, time_cost=1, concurrency=2, queue=3))
    try:
        verifier = await hashing.hash(b"s" * 32)
        results = await asyncio.gather(
            *(hashing.verify(verifier, b"s" * 32) for _ in range(40)), return_exceptions=True
        )
        admitted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, RateLimited)]
        assert len(admitted) + len(refused) == 40
        assert all(r.ok for r in admitted)
        assert len(admitted) >= 5 and refused, (len(admitted), len(refused))
        assert hashing.peak_running <= 2 and hashing.peak <= 5
        assert (await hashing.verify(verifier, b"t" * 32)).ok is False
        assert (await hashing.verify(None, b"s" * 32)).ok is False  # the dummy verify
    finally:
        hashing.close()


class RssSampler:
    """Samples a process's RSS on a thread until stopped; the peak in bytes."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def test_a_flood_of_sign_ins_against_a_server_process(
    settings: Settings, make_firm: MakeFirm, tmp_path: Path
) -> None:
    kit = await make_firm()
    async with kit.db.read() as session:
        firm = await session.get(Firm, kit.firm_id)
        user = await session.get(StaffUser, kit.staff.id)
        assert firm is not None and user is not None
        slug, email = firm.slug, user.email
    kdf = await give_password(kit.db, settings, kit.staff, email, PASSWORD)
    env = worker_env(
        database_url=settings.database_url,
        broker_url="memory://",
        data_dir=tmp_path / "worker-data",
        secret_key=TEST_SECRET_HEX,
        extra={
            "RTPORTAL_LOGIN_HASH_MEMORY_KIB": str(HASH_MEMORY_KIB),
            "RTPORTAL_LOGIN_HASH_TIME_COST": "1",
            "RTPORTAL_LOGIN_HASH_CONCURRENCY": str(CONCURRENCY),
            "RTPORTAL_LOGIN_HASH_QUEUE": str(QUEUE),
            "RTPORTAL_SIGNIN_ADDRESS_LIMIT": "100000",
            "RTPORTAL_SIGNIN_ACCOUNT_LIMIT": "100000",
        },
    )
    worker = Worker("flood", env, tmp_path)
    await worker.start()
    try:
        right = signin_body(slug, email, PASSWORD, kdf.to_json())
        wrong = signin_body(slug, email, "not the password", kdf.to_json())
        nobody = signin_body(slug, "nobody@firm.test", PASSWORD, kdf.to_json())
        bodies = [(right, wrong, nobody)[i % 3] for i in range(FLOOD)]
        limits = httpx.Limits(max_connections=FLOOD, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=worker.http_url, limits=limits, timeout=60.0, trust_env=False
        ) as http:
            # Warm up (imports, first connections), then measure from this baseline.
            assert (await http.post("/api/v1/signin", json=right)).status_code == 201
            with RssSampler(worker.pid) as rss:
                baseline = rss.peak
                answers = await asyncio.gather(
                    *(http.post("/api/v1/signin", json=body) for body in bodies)
                )
            codes = [a.status_code for a in answers]
        assert worker.alive(), worker.log_text()
        assert all(code < 500 for code in codes), (codes, worker.log_text())
        assert set(codes) <= {201, 401, 429}, set(codes)
        counts = {code: codes.count(code) for code in sorted(set(codes))}
        grown = (rss.peak - baseline) / 2**20
        cap = CONCURRENCY * HASH_MEMORY_KIB / 1024
        print(
            f"flood: {FLOOD} sign-ins -> {counts}; worker RSS baseline "
            f"{baseline / 2**20:.0f} MiB, peak {rss.peak / 2**20:.0f} MiB "
            f"(+{grown:.0f} MiB; hashing cap {CONCURRENCY} x {HASH_MEMORY_KIB // 1024} MiB)"
        )
        # Unbounded hashing would hold 200 x 16 MiB = 3.2 GiB at once.
        assert grown < cap + 96, grown
        assert counts.get(201, 0) >= 1
        for answer in answers:
            if answer.status_code == 401:
                assert answer.json()["error"]["code"] == "invalid_credentials"
            if answer.status_code == 429:
                assert answer.json()["error"]["code"] == "rate_limited"
    finally:
        await worker.terminate()
