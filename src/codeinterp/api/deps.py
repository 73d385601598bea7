"""Request-scoped dependencies: a database session, the run worker."""

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from codeinterp.runs.worker import RunWorker


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """An AsyncSession, committed when the endpoint returns without error and before the response is sent."""
    async with request.app.state.database.session() as session:
        function_stack = request.scope.get("fastapi_function_astack")
        if function_stack is not None:
            async def _commit_on_success(exc_type, _exc, _tb) -> bool:
                if exc_type is None:
                    await session.commit()
                return False

            function_stack.push_async_exit(_commit_on_success)
        try:
            yield session
        except Exception:
            await session.rollback()
            raise
        else:
            await session.commit()


def run_worker(request: Request) -> RunWorker:
    return request.app.state.run_worker
