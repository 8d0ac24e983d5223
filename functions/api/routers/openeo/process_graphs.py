"""User-defined processes: `/process_graphs`, `/process_graphs/{process_graph_id}`."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.openeo.context import openeo_url
from routers.shared.caller import caller
from routers.shared.context import backend, json_body, page_size

router = Router()




@router.get("/process_graphs")
def list_process_graphs() -> dict:
    limit = page_size(router)
    after = router.current_event.get_query_string_value("after", None)
    processes, next_token = backend().user_processes.list_processes(caller(router).user_id, limit, after)
    links = []
    if next_token:
        links.append({"rel": "next", "href": f"{openeo_url(router)}/process_graphs?limit={limit}&after={next_token}"})
    return {"processes": processes, "links": links}


@router.get("/process_graphs/<process_graph_id>")
def describe_process_graph(process_graph_id: str) -> dict:
    return backend().user_processes.get_process(caller(router).user_id, process_graph_id)


@router.put("/process_graphs/<process_graph_id>")
def store_process_graph(process_graph_id: str) -> Response:
    user_id = caller(router).user_id
    backend().user_processes.store_process(user_id, process_graph_id, json_body(router))
    return Response(status_code=200, body="")


@router.delete("/process_graphs/<process_graph_id>")
def delete_process_graph(process_graph_id: str) -> Response:
    backend().user_processes.delete_process(caller(router).user_id, process_graph_id)
    return Response(status_code=204, body="")
