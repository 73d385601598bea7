"""All of codeinterp's settings: one object, read from `CODEINTERP_*` environment variables."""

import hashlib
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CODEINTERP_", extra="ignore")

    # Storage
    data_dir: Path = Path(".codeinterp")
    database_url: str | None = None  # default: SQLite file under data_dir
    max_upload_bytes: int = 512 * 1024 * 1024
    # extensions accepted for purpose "assistants" beyond OpenAI's list, comma-separated ("parquet,tsv")
    upload_extensions: str = ""
    # Blobs: a local directory under data_dir, or a bucket (s3://bucket/prefix; a prefix codeinterp
    # alone uses), reached with the usual AWS_* variables (keys, region, AWS_ENDPOINT_URL)
    blob_url: str | None = None
    blob_endpoint: str | None = None  # an S3-compatible server's URL, instead of AWS_ENDPOINT_URL
    # An unfinished upload or a blob with no row is removed once it is this old (uploads in flight,
    # here or on another replica, are younger); swept at start and every blob_sweep_interval_seconds.
    # On SQLite (one process) the sweep at start removes them whatever their age.
    blob_orphan_grace_seconds: int = 3600
    blob_sweep_interval_seconds: int = 3600

    # Auth
    api_key: str | None = None  # also accepted, for the default project

    # Upstream model (OpenAI-compatible Chat Completions)
    model_base_url: str | None = None
    model_api_key: str | None = None
    model_timeout_seconds: float = 600.0

    # Operating it
    log_format: Literal["text", "json"] = "text"  # json: one object per line, with request, project and run ids
    metrics_token: str | None = None  # when set, GET /metrics needs `Authorization: Bearer <token>`
    shutdown_grace_seconds: float = 10.0  # on SIGTERM, runs in flight have this long to finish, then fail

    # Runs
    run_expiry_seconds: int = 600  # a run not finished by then (e.g. waiting for tool outputs) expires
    # With PostgreSQL, this process among the replicas sharing the database; the same id after a
    # restart lets it end its own unfinished runs at once (default: host name and data directory).
    replica_id: str | None = None
    # Where runs and responses wait to be driven: "auto" is procrastinate (jobs in PostgreSQL, run by
    # any replica) with PostgreSQL, else "inprocess" (this process drives what it creates; on
    # PostgreSQL, only for a single replica: what it leaves when lost is failed, never moved).
    run_queue: Literal["auto", "inprocess", "procrastinate"] = "auto"

    # Projects and runs: limits per tenant
    project_storage_mb: int = 10240  # bytes a project may store: uploads and generated files
    project_max_sessions: int = 50  # live sandbox sessions of one project (one per thread in use)
    max_files_per_execution: int = 100  # files saved from /mnt/data after one execution
    prompt_max_files: int = 100  # paths of /mnt/data listed to the model in the system message

    # Sandboxes
    sandbox_env: Path = PROJECT_ROOT / ".sandbox-env"  # the sandbox's own Python environment
    # wheels that `pip install` inside a session installs from (no network; `codeinterp packages download` fills it)
    sandbox_wheelhouse: Path | None = None
    sandbox_unsafe: bool = False  # allow sandboxes without isolation (a developer laptop)
    # which sandbox backend runs sessions: "bwrap" (this host), or "package.module:Class" (a
    # SandboxBackend subclass taking the settings, e.g. a test backend)
    sandbox_backend: str = "bwrap"
    sandbox_max_sessions: int = 200
    sandbox_warm_sessions: int = 20  # sessions kept started ahead of demand, so new ones answer at once
    sandbox_memory_mb: int = 1024
    sandbox_pids: int = 128
    sandbox_cpu_shares: int = 1024
    sandbox_tmp_mb: int = 256
    sandbox_data_mb: int = 1024
    sandbox_sessions_tmpfs_mb: int = 8192  # the memory-backed filesystem holding every session's /mnt/data
    sandbox_file_size_mb: int = 512
    sandbox_output_bytes: int = 1024 * 1024
    sandbox_exec_timeout_seconds: float = 120.0
    sandbox_interrupt_grace_seconds: float = 2.0
    sandbox_idle_expiry_seconds: float = 3600.0
    sandbox_total_memory_mb: int | None = None  # all sandboxes together; default: 3/4 of the host's memory
    container_max_memory: Literal["1g", "4g", "16g", "64g"] = "16g"  # the largest memory_limit a container may ask
    sandbox_uid_base: int = 1_500_000_000  # each session runs as its own uid, drawn from 2^24 uids from here

    # Sandbox hosts (`codeinterp sandbox-host`) and the `remote` backend that spreads sessions over them
    sandbox_host_secret: str | None = None  # shared by the hosts and the servers; a host refuses to run without it
    sandbox_hosts: str = ""  # the remote backend's hosts, comma-separated base URLs (http:// or https://)
    # mTLS: a host serves TLS with this certificate and key and requires client certificates signed by the CA
    # (sandbox_tls_ca); the remote backend trusts hosts signed by that CA and presents its own certificate
    sandbox_tls_cert: Path | None = None
    sandbox_tls_key: Path | None = None
    sandbox_tls_ca: Path | None = None

    # The `kubernetes` backend: one session = one pod running `codeinterp sandbox-host`, claimed from a
    # kubernetes-sigs/agent-sandbox SandboxWarmPool (one pool per container memory tier: PREFIX-1g, -4g, ...)
    sandbox_k8s_namespace: str = "default"
    sandbox_k8s_kubeconfig: Path | None = None  # None: the pod's in-cluster configuration
    sandbox_k8s_pool_prefix: str = "codeinterp-sandbox"
    sandbox_k8s_port: int = 8100  # where the sandbox pods' `codeinterp sandbox-host` listens
    sandbox_k8s_ready_timeout_seconds: float = 120.0  # a claim not ready by then is deleted and the session fails
    sandbox_k8s_claim_lifetime_seconds: float = 86400.0  # each claim's shutdownTime: the backstop for orphans
    sandbox_k8s_replica: str = Field(default_factory=socket.gethostname)  # labels this server's claims

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'codeinterp.db').resolve()}"

    @property
    def extra_upload_extensions(self) -> frozenset[str]:
        """CODEINTERP_UPLOAD_EXTENSIONS as suffixes: {".parquet", ".tsv"}."""
        return frozenset("." + ext.strip().lower().lstrip(".") for ext in self.upload_extensions.split(",")
                         if ext.strip().lstrip("."))

    @property
    def resolved_replica_id(self) -> str:
        if self.replica_id:
            return self.replica_id
        digest = hashlib.sha256(f"{socket.gethostname()}:{self.data_dir.resolve()}".encode()).hexdigest()
        return "replica_" + digest[:24]

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"


@lru_cache
def get_settings() -> Settings:
    return Settings()
