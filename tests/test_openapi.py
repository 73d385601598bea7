"""The served OpenAPI description agrees with the contract for the Files API and errors."""

import pytest


def test_files_paths_and_operations_match(contract, served):
    for path in ("/files", "/files/{file_id}", "/files/{file_id}/content"):
        theirs = contract["paths"][path]
        ours = served["paths"]["/v1" + path]
        for method, operation in theirs.items():
            if method not in ("get", "post", "delete"):
                continue
            assert method in ours, (path, method)
            assert ours[method]["operationId"] == operation["operationId"]
        assert {m for m in ours} == {m for m in theirs if m in ("get", "post", "delete")}


@pytest.mark.parametrize("name", ["OpenAIFile", "ListFilesResponse", "DeleteFileResponse", "Error", "ErrorResponse"])
def test_schemas_have_the_contracts_fields(contract, served, name):
    theirs = contract["components"]["schemas"][name]
    ours = served["components"]["schemas"][name]
    assert set(ours["properties"]) == set(theirs["properties"])
    assert set(ours.get("required", [])) == set(theirs.get("required", []))


def test_list_files_parameters_match(contract, served):
    theirs = {p["name"]: p for p in contract["paths"]["/files"]["get"]["parameters"]}
    ours = {p["name"]: p for p in served["paths"]["/v1/files"]["get"]["parameters"]}
    assert set(theirs) <= set(ours)
    assert ours["limit"]["schema"]["default"] == theirs["limit"]["schema"]["default"] == 10000
    assert ours["order"]["schema"]["default"] == "desc"


def test_container_paths_and_shapes_match(contract, served):
    for path in ("/containers", "/containers/{container_id}", "/containers/{container_id}/files",
                 "/containers/{container_id}/files/{file_id}", "/containers/{container_id}/files/{file_id}/content"):
        theirs = contract["paths"][path]
        ours = served["paths"]["/v1" + path]
        assert {m for m in ours} == {m for m in theirs if m in ("get", "post", "delete")}, path
        for method in ours:
            assert ours[method]["operationId"] == theirs[method]["operationId"], (path, method)
    for name in ("ContainerResource", "ContainerListResource", "ContainerFileResource", "ContainerFileListResource"):
        theirs = contract["components"]["schemas"][name]
        ours = served["components"]["schemas"][name]
        assert set(ours["properties"]) == set(theirs["properties"]), name
        assert set(ours.get("required", [])) >= set(theirs.get("required", [])), name  # ours are always set
    body = served["paths"]["/v1/containers/{container_id}/files"]["post"]["requestBody"]["content"]
    theirs = contract["components"]["schemas"]["CreateContainerFileBody"]
    for content_type in ("application/json", "multipart/form-data"):
        assert set(body[content_type]["schema"]["properties"]) == set(theirs["properties"])
