"""An S3-compatible server for tests: moto in server mode, in a process of its own (so that its
buffers never count in the codeinterp server's memory), with one bucket per test."""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers.server import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


class MotoServer:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "MotoServer":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         env={**os.environ, **CREDENTIALS}, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                httpx.get(self.endpoint + "/moto-api/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto did not answer within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            region_name=CREDENTIALS["AWS_REGION"])

    def new_bucket(self) -> "Bucket":
        name = "codeinterp-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return Bucket(self, name)


class Bucket:
    def __init__(self, moto: MotoServer, name: str, prefix: str = "blobs") -> None:
        self.moto, self.name, self.prefix = moto, name, prefix

    @property
    def server_env(self) -> dict:
        """The environment that points a codeinterp server at this bucket."""
        return {**CREDENTIALS, "CODEINTERP_BLOB_URL": f"s3://{self.name}/{self.prefix}",
                "CODEINTERP_BLOB_ENDPOINT": self.moto.endpoint}

    def keys(self) -> set[str]:
        """The objects stored under the prefix, relative to it (complete objects only)."""
        pages = self.moto.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=self.prefix + "/")
        return {o["Key"].removeprefix(self.prefix + "/") for page in pages for o in page.get("Contents", [])}

    def put(self, key: str, data: bytes) -> None:
        self.moto.client().put_object(Bucket=self.name, Key=f"{self.prefix}/{key}", Body=data)

    def unfinished_uploads(self) -> int:
        found = self.moto.client().list_multipart_uploads(Bucket=self.name, Prefix=self.prefix + "/")
        return len(found.get("Uploads", []))
