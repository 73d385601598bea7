"""What assistants, threads and messages point at: files, which must be the project's."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.store.errors import InvalidRequest
from codeinterp.store.files import File


async def check_file_ids(session: AsyncSession, project_id: str, file_ids: list[str], params: list[str]) -> None:
    """Every id names a file of this project (`params[n]` names the parameter that gave `file_ids[n]`)."""
    if not file_ids:
        return
    found = set((await session.execute(
        select(File.id).where(File.project_id == project_id, File.id.in_(set(file_ids))))).scalars())
    for file_id, param in zip(file_ids, params):
        if file_id not in found:
            raise InvalidRequest(f"No file found with id '{file_id}'.", param=param)


async def stored_tool_resources(session: AsyncSession, project_id: str, resources: dict | None,
                                param: str = "tool_resources") -> dict | None:
    """Validated `tool_resources` as stored (None, `{}` or `{"code_interpreter": {"file_ids": [...]}}`),
    once its files are found to be the project's."""
    if resources is None:
        return None
    code = resources.get("code_interpreter")
    if code is None:
        return {}
    file_ids = code.get("file_ids") or []
    ids_param = f"{param}.code_interpreter.file_ids"
    await check_file_ids(session, project_id, file_ids, [f"{ids_param}[{n}]" for n in range(len(file_ids))])
    return {"code_interpreter": {"file_ids": file_ids}}
