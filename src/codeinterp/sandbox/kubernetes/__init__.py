"""Sandboxes as Kubernetes pods (kubernetes-sigs/agent-sandbox), driven with kubernetes-asyncio:

    claims.py    SandboxClaims: create one on a warm pool, watch it until ready, delete it
    backend.py   the `kubernetes` backend: one session = one claimed pod running `codeinterp
                 sandbox-host`, talked to as the `remote` backend talks to a host
"""
