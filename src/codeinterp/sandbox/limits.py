"""A session's limits as the settings give them."""

from codeinterp.config import Settings
from codeinterp.sandbox.types import Limits


def limits_from(settings: Settings) -> Limits:
    return Limits(memory_mb=settings.sandbox_memory_mb, pids=settings.sandbox_pids,
                  cpu_shares=settings.sandbox_cpu_shares, tmp_mb=settings.sandbox_tmp_mb,
                  data_mb=settings.sandbox_data_mb, file_size_mb=settings.sandbox_file_size_mb,
                  output_bytes=settings.sandbox_output_bytes)
