"""Settings come from CODEINTERP_* variables, with embedded defaults."""

from pathlib import Path

from codeinterp.config import Settings


def test_defaults_use_sqlite_under_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("CODEINTERP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CODEINTERP_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'codeinterp.db'}"
    assert settings.blob_dir == tmp_path / "blobs"


def test_database_url_overrides_sqlite(monkeypatch):
    url = "postgresql+asyncpg://user:pw@127.0.0.1:5432/codeinterp"
    monkeypatch.setenv("CODEINTERP_DATABASE_URL", url)
    assert Settings().resolved_database_url == url


def test_sandbox_limits_read_from_environment(monkeypatch):
    monkeypatch.setenv("CODEINTERP_SANDBOX_MEMORY_MB", "256")
    monkeypatch.setenv("CODEINTERP_SANDBOX_UNSAFE", "true")
    settings = Settings()
    assert settings.sandbox_memory_mb == 256
    assert settings.sandbox_unsafe is True
    assert isinstance(settings.sandbox_env, Path)
