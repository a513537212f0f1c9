"""What an API client does, step by step: upload, start, wait, download."""

from __future__ import annotations

import csv
import io
import time

from shared.files.result_files import PASSWORD
from tests.support.secrets import remember_secret


class ImportActions:
    """What an API client does, step by step (flaskr-style action helpers)."""

    def __init__(self, client, auth: dict[str, str]) -> None:
        self.client = client
        self.auth = auth

    def reference(self, kind: str) -> dict[str, int]:
        items = self.client.get(f"/api/v1/{kind}", headers=self.auth).get_json()["items"]
        return {item["name"]: item["id"] for item in items}

    def upload(self, data: bytes, filename: str = "users.csv"):
        return self.client.post(
            "/api/v1/uploads",
            headers=self.auth,
            data={"file": (io.BytesIO(data), filename)},
            content_type="multipart/form-data",
        )

    def start(self, upload_id: str, mapping: dict, dry_run: bool = False):
        return self.client.post(
            "/api/v1/imports",
            headers=self.auth,
            json={"upload_id": upload_id, "mapping": mapping, "dry_run": dry_run},
        )

    def status(self, job_id: str) -> dict:
        return self.client.get(f"/api/v1/imports/{job_id}", headers=self.auth).get_json()

    def wait_done(self, job_id: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if status["status"] in ("succeeded", "failed", "cancelled"):
                return status
            time.sleep(0.2)
        raise AssertionError(f"import {job_id} did not finish: {status}")

    def wait_settled(self, job_id: str, timeout: float = 90) -> dict:
        """Wait until nothing moves the import on by itself: ended, undone, no regeneration running."""
        from shared.imports.progress import settled

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if settled(status):
                return status
            time.sleep(0.2)
        raise AssertionError(f"import {job_id} did not settle: {status}")

    def post(self, job_id: str, action: str, body: dict | None = None):
        """POST /api/v1/imports/<id>/<action> (undo, regenerate-passwords, retry, ...)."""
        return self.client.post(f"/api/v1/imports/{job_id}/{action}", headers=self.auth, json=body)

    def run(self, data: bytes, mapping: dict, filename: str = "users.csv", dry_run: bool = False) -> dict:
        """Upload, start and wait; returns the final status."""
        up = self.upload(data, filename)
        assert up.status_code == 201, up.get_json()
        started = self.start(up.get_json()["upload_id"], mapping, dry_run)
        assert started.status_code == 202, started.get_json()
        return self.wait_done(started.get_json()["id"])

    def download(self, job_id: str, which: str) -> tuple[int, str]:
        resp = self.client.get(f"/api/v1/imports/{job_id}/{which}.csv", headers=self.auth)
        text = resp.get_data().decode("utf-8-sig")
        if which == "success" and resp.status_code == 200:
            remember_secret(*(row.get(PASSWORD, "") for row in csv.DictReader(io.StringIO(text))))
        return resp.status_code, text
