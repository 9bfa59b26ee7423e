"""A local emulator of the Salesforce endpoints Centralita uses: logins and Bulk API 1.0, over real HTTP.

No Salesforce org is reachable from development machines or CI, so the unchanged `salesforce-bulk` client
talks to this instead: `SalesforceBulk(sessionId=<access token>, host="http://127.0.0.1:PORT")`.

Covered: SOAP login, OAuth 2.0 token (client credentials and JWT bearer; the password grant is refused as
retired), Bulk API 1.0 jobs (insert, update, upsert, delete, query; close, abort, status), batches with CSV or
JSON bodies (status, list, request, per-record results), query results, the `Case` object with the external
id `Centralita_Case_Id__c` and field validation, `InvalidSessionId` on an expired session, the API request
limit (`REQUEST_LIMIT_EXCEEDED`) and the per-batch limits (10,000 records, 10 MB). Failures are injected
through `POST /__emulator/faults` for tests. State lives in SQLite.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from connectors.salesforce.case_object import DATA_FIELDS, EXTERNAL_ID, FIELDS
from connectors.salesforce.store import Store, iso
from infra.metrics import exposition

NS = "http://www.force.com/2009/06/asyncapi/dataload"
MAX_BATCH_RECORDS = 10_000
MAX_BATCH_BYTES = 10_000_000
SUPPORTED_OPERATIONS = {"insert", "update", "upsert", "delete", "query", "queryAll"}
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SOQL = re.compile(r"^\s*select\s+(?P<fields>.+?)\s+from\s+(?P<object>\w+)(?:\s+where\s+(?P<where>.+?))?"
                  r"(?:\s+limit\s+(?P<limit>\d+))?\s*$", re.IGNORECASE | re.DOTALL)
CONDITION = re.compile(r"^\s*(\w+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*$")


@dataclass
class EmulatorConfig:
    """What the emulator accepts, and how it behaves. Secrets come from settings (environment)."""

    db_path: Path
    client_id: str
    client_secret: str
    username: str
    password: str
    jwt_public_key: str | None = None  # PEM of the connected app's certificate public key
    session_ttl_s: float = 7200.0
    batch_delay_s: float = 0.05
    api_limit: int = 1_000_000  # API requests allowed per emulator lifetime (counter "api_calls")


@dataclass
class Faults:
    """Failures injected by tests: the next N Bulk API calls answer with an HTTP 5xx."""

    fail_next: int = 0
    fail_status: int = 503
    reject_external_ids: set[str] = field(default_factory=set)  # as if an org validation rule refused them


class BulkError(Exception):
    """An error the Bulk API answers with `<error><exceptionCode/><exceptionMessage/></error>`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def create_app(config: EmulatorConfig) -> FastAPI:
    store = Store(config.db_path)
    faults = Faults()
    tasks: set[asyncio.Task] = set()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """Batches accepted before a restart are processed after it, as Salesforce would."""
        for batch in store.pending_batches():
            store.set_batch_state(batch["id"], "Queued")
            schedule(batch["id"])
        yield

    def schedule(batch_id: str) -> None:
        task = asyncio.create_task(_process_later(batch_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    app = FastAPI(title="Centralita Salesforce emulator", version="1", lifespan=lifespan)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    # -- logins --------------------------------------------------------------------------------------

    @app.post("/services/oauth2/token")
    async def oauth_token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("client_id") != config.client_id or form.get("client_secret") != config.client_secret:
                return _oauth_error("invalid_client", "invalid client credentials")
            subject = config.client_id
        elif grant == JWT_BEARER:
            subject, problem = _verify_jwt(str(form.get("assertion") or ""), config, base_url(request))
            if problem:
                return _oauth_error("invalid_grant", problem)
        elif grant == "password":
            return _oauth_error("unsupported_grant_type", "the username-password flow is retired; use client_credentials or JWT bearer")
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        token = store.create_session(subject, config.session_ttl_s)
        base = base_url(request)
        return JSONResponse({"access_token": token, "instance_url": base, "id": f"{base}/id/00D000000000001AAA/005000000000001AAA",
                             "token_type": "Bearer", "issued_at": str(int(time.time() * 1000)), "scope": "api"})

    @app.post("/services/Soap/u/{version}")
    async def soap_login(version: str, request: Request) -> Response:
        try:
            root = ET.fromstring(await request.body())
        except ET.ParseError:
            return _soap_fault("soapenv:Client", "INVALID_REQUEST", "malformed SOAP envelope")
        username = next((e.text for e in root.iter() if e.tag.endswith("username")), None)
        password = next((e.text for e in root.iter() if e.tag.endswith("password")), None)
        if username != config.username or password != config.password:
            return _soap_fault("sf:INVALID_LOGIN", "INVALID_LOGIN",
                               "Invalid username, password, security token; or user locked out.")
        token = store.create_session(username, config.session_ttl_s)
        base = base_url(request)
        body = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                f'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
                f"<metadataServerUrl>{base}/services/Soap/m/{escape(version)}/00D000000000001</metadataServerUrl>"
                f"<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
                f"<serverUrl>{base}/services/Soap/u/{escape(version)}/00D000000000001</serverUrl>"
                f"<sessionId>{token}</sessionId><userId>005000000000001AAA</userId>"
                f"<userInfo><organizationId>00D000000000001AAA</organizationId><userName>{escape(username or '')}</userName></userInfo>"
                f"</result></loginResponse></soapenv:Body></soapenv:Envelope>")
        return Response(body, media_type="text/xml")

    # -- Bulk API 1.0 --------------------------------------------------------------------------------

    @app.middleware("http")
    async def bulk_gate(request: Request, call_next):
        """Session check, API limit and injected faults apply to every Bulk API call, in that order."""
        if not request.url.path.startswith("/services/async/"):
            return await call_next(request)
        calls = store.bump("api_calls")
        try:
            if faults.fail_next > 0:
                faults.fail_next -= 1
                store.bump("injected_failures")
                return Response("<html><body>Service Unavailable (injected)</body></html>",
                                status_code=faults.fail_status, media_type="text/html")
            if calls > config.api_limit:
                raise BulkError(403, "ExceededQuota", "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.")
            if not store.session_valid(request.headers.get("X-SFDC-Session")):
                raise BulkError(400, "InvalidSessionId", "INVALID_SESSION_ID: Session expired or invalid")
            return await call_next(request)
        except BulkError as exc:
            return _error_response(exc, json_format="json" in request.headers.get("content-type", ""))

    @app.post("/services/async/{version}/job")
    async def create_job(version: str, request: Request) -> Response:
        info = _parse_info(await request.body(), request.headers.get("content-type", ""))
        operation, obj = info.get("operation"), info.get("object")
        content_type = (info.get("contentType") or "CSV").upper()
        if operation not in SUPPORTED_OPERATIONS:
            raise_bulk(400, "InvalidJob", f"Invalid operation: {operation}")
        if obj != "Case":
            raise_bulk(400, "InvalidJob", f"Unable to find object: {obj}")
        if content_type not in ("CSV", "JSON"):
            raise_bulk(400, "InvalidJob", f"contentType {content_type} is not supported (CSV or JSON)")
        external_id = info.get("externalIdFieldName")
        if operation == "upsert" and external_id != EXTERNAL_ID and external_id != "Id":
            raise_bulk(400, "InvalidJob", f"External ID field {external_id} is not an external id on Case")
        job = store.create_job(obj, operation, external_id, content_type, info.get("concurrencyMode") or "Parallel",
                               created_by="005000000000001AAA")
        return _job_response(store, job, request, version, status=201)

    @app.get("/services/async/{version}/job/{job_id}")
    async def get_job(version: str, job_id: str, request: Request) -> Response:
        return _job_response(store, _job_or_404(store, job_id), request, version)

    @app.post("/services/async/{version}/job/{job_id}")
    async def change_job(version: str, job_id: str, request: Request) -> Response:
        job = _job_or_404(store, job_id)
        state = _parse_info(await request.body(), request.headers.get("content-type", "")).get("state")
        if state not in ("Closed", "Aborted"):
            raise_bulk(400, "InvalidJobState", f"Invalid state: {state}")
        if job["state"] != "Open":
            raise_bulk(400, "InvalidJobState", f"Job {job_id} is {job['state']}, not Open")
        store.set_job_state(job_id, state)
        if state == "Aborted":
            for batch in store.batches(job_id):
                if batch["state"] == "Queued":
                    store.set_batch_state(batch["id"], "NotProcessed", "Job aborted")
        return _job_response(store, store.job(job_id), request, version)

    @app.post("/services/async/{version}/job/{job_id}/batch")
    async def add_batch(version: str, job_id: str, request: Request) -> Response:
        job = _job_or_404(store, job_id)
        if job["state"] != "Open":
            raise_bulk(400, "InvalidJobState", f"Job {job_id} is {job['state']}: no batches can be added")
        body = await request.body()
        if len(body) > MAX_BATCH_BYTES:
            raise_bulk(400, "InvalidBatch", f"Exceeded max size limit of {MAX_BATCH_BYTES} bytes per batch")
        batch = store.create_batch(job_id, body)
        schedule(batch["id"])
        return _batch_response(store.batch(batch["id"]), job, status=201)

    @app.get("/services/async/{version}/job/{job_id}/batch")
    async def list_batches(version: str, job_id: str) -> Response:
        job = _job_or_404(store, job_id)
        batches = store.batches(job_id)
        if job["content_type"] == "JSON":
            return JSONResponse({"batchInfo": [_batch_info(b) for b in batches]})
        inner = "".join(_xml_fields("batchInfo", _batch_info(b), ns=False) for b in batches)
        return _xml(f'<batchInfoList xmlns="{NS}">{inner}</batchInfoList>')

    @app.get("/services/async/{version}/job/{job_id}/batch/{batch_id}")
    async def get_batch(version: str, job_id: str, batch_id: str) -> Response:
        job = _job_or_404(store, job_id)
        return _batch_response(_batch_or_404(store, job_id, batch_id), job)

    @app.get("/services/async/{version}/job/{job_id}/batch/{batch_id}/request")
    async def get_batch_request(version: str, job_id: str, batch_id: str) -> Response:
        job = _job_or_404(store, job_id)
        batch = _batch_or_404(store, job_id, batch_id)
        return Response(batch["body"], headers={"Content-Type": _media(job)})

    @app.get("/services/async/{version}/job/{job_id}/batch/{batch_id}/result")
    async def get_batch_result(version: str, job_id: str, batch_id: str) -> Response:
        job = _job_or_404(store, job_id)
        batch = _batch_or_404(store, job_id, batch_id)
        if batch["state"] != "Completed":
            raise_bulk(400, "InvalidBatch", f"Batch not completed (state {batch['state']})")
        results = json.loads(batch["results"] or "[]")
        if job["operation"] in ("query", "queryAll"):
            ids = [f"752{batch_id[3:]}"]
            if job["content_type"] == "JSON":
                return JSONResponse(ids)
            return _xml(f'<result-list xmlns="{NS}">' + "".join(f"<result>{i}</result>" for i in ids) + "</result-list>")
        if job["content_type"] == "JSON":
            return JSONResponse(results)
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["Id", "Success", "Created", "Error"])
        for r in results:
            error = " ".join(f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])} --" for e in r["errors"])
            writer.writerow([r["id"] or "", str(r["success"]).lower(), str(r["created"]).lower(), error])
        return _csv(out.getvalue())

    @app.get("/services/async/{version}/job/{job_id}/batch/{batch_id}/result/{result_id}")
    async def get_query_result(version: str, job_id: str, batch_id: str, result_id: str) -> Response:
        job = _job_or_404(store, job_id)
        batch = _batch_or_404(store, job_id, batch_id)
        if result_id != f"752{batch_id[3:]}" or batch["state"] != "Completed":
            raise_bulk(404, "InvalidBatch", f"Unknown result {result_id}")
        rows = json.loads(batch["results"] or "[]")
        if job["content_type"] == "JSON":
            return JSONResponse([{"attributes": {"type": "Case"}, **row} for row in rows])
        out = io.StringIO()
        fields = list(rows[0]) if rows else _query_fields(batch["body"].decode())
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow(["" if row[f] is None else row[f] for f in fields])
        return _csv(out.getvalue())

    # -- emulator control (tests, development) -------------------------------------------------------

    @app.get("/__emulator/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/__emulator/stats")
    async def stats() -> dict[str, int]:
        return {"api_calls": store.counter("api_calls"), "cases": store.case_count(),
                "records_written": store.counter("records_written"),
                "injected_failures": store.counter("injected_failures")}

    @app.post("/__emulator/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        """{"fail_next": N, "fail_status": 503, "expire_sessions": true, "api_limit": N, "batch_delay_s": S,
        "reject_external_ids": [...], "reset_counters": true}"""
        spec = await request.json()
        faults.fail_next = int(spec.get("fail_next", faults.fail_next))
        faults.fail_status = int(spec.get("fail_status", faults.fail_status))
        if spec.get("expire_sessions"):
            store.expire_sessions()
        if "api_limit" in spec:
            config.api_limit = store.counter("api_calls") + int(spec["api_limit"])
        if "reject_external_ids" in spec:
            faults.reject_external_ids = set(spec["reject_external_ids"])
        if "batch_delay_s" in spec:
            config.batch_delay_s = float(spec["batch_delay_s"])
        if spec.get("reset_counters"):
            store.reset_counters()
            config.api_limit = 1_000_000 if "api_limit" not in spec else int(spec["api_limit"])
        return {"fail_next": faults.fail_next, "api_limit": config.api_limit, "batch_delay_s": config.batch_delay_s}

    @app.get("/__emulator/cases")
    async def cases_with_prefix(prefix: str) -> list[dict[str, Any]]:
        return store.cases_with_prefix(prefix)

    @app.get("/__emulator/cases/{external_id}")
    async def case_by_external_id(external_id: str) -> Response:
        case = store.case_by(EXTERNAL_ID, external_id)
        return JSONResponse(case) if case else JSONResponse({"error": "not found"}, status_code=404)

    @app.exception_handler(BulkError)
    async def bulk_error(request: Request, exc: BulkError) -> Response:
        return _error_response(exc, json_format="json" in request.headers.get("content-type", ""))

    # -- batch processing ----------------------------------------------------------------------------

    async def _process_later(batch_id: str) -> None:
        await asyncio.sleep(config.batch_delay_s)
        batch = store.batch(batch_id)
        if batch is None or batch["state"] != "Queued":
            return
        job = store.job(batch["job_id"])
        store.set_batch_state(batch_id, "InProgress")
        await asyncio.sleep(config.batch_delay_s)
        try:
            with store.transaction():
                results = _run_batch(store, job, batch["body"], faults.reject_external_ids)
        except BulkError as exc:
            store.set_batch_state(batch_id, "Failed", f"{exc.code} : {exc.message}")
            return
        store.finish_batch(batch_id, results)
        if job["operation"] not in ("query", "queryAll"):
            store.bump("records_written", sum(1 for r in results if r["success"]))

    app.state.store = store
    app.state.config = config
    return app


def raise_bulk(status: int, code: str, message: str) -> None:
    raise BulkError(status, code, message)


def _run_batch(store: Store, job: dict[str, Any], body: bytes, rejected: set[str]) -> list[dict[str, Any]]:
    if job["operation"] in ("query", "queryAll"):
        return _run_query(store, body.decode("utf-8", errors="replace"))
    records = _parse_records(body, job["content_type"])
    if len(records) > MAX_BATCH_RECORDS:
        raise BulkError(400, "InvalidBatch", f"Records in a single batch must be less than or equal to {MAX_BATCH_RECORDS}")
    key = job["external_id"] if job["operation"] == "upsert" else None
    seen: dict[str, int] = {}
    for record in records:
        value = record.get(key) if key else None
        if value:
            seen[value] = seen.get(value, 0) + 1
    results = []
    for record in records:
        value = record.get(key) if key else None
        if value and seen[value] > 1:
            results.append({"id": None, "success": False, "created": False, "errors": [
                {"statusCode": "DUPLICATE_VALUE", "message": f"Duplicate external id specified: {key}", "fields": [key]}]})
            continue
        if record.get(EXTERNAL_ID) in rejected:
            results.append({"id": None, "success": False, "created": False, "errors": [
                {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Case refused by a validation rule", "fields": []}]})
            continue
        results.append(store.write_case(record, job["operation"], key))
    return results


def _parse_records(body: bytes, content_type: str) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BulkError(400, "InvalidBatch", "Batch body is not valid UTF-8") from None
    if content_type == "JSON":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BulkError(400, "InvalidBatch", f"Failed to parse JSON batch: {exc.msg} at {exc.pos}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise BulkError(400, "InvalidBatch", "A JSON batch is an array of records")
        return [{k: v for k, v in r.items() if k != "attributes"} for r in records]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise BulkError(400, "InvalidBatch", "CSV batch has no header row")
    records = []
    for row in reader:
        if None in row:
            raise BulkError(400, "InvalidBatch", f"CSV row {reader.line_num} has more values than the header")
        records.append(dict(row))
    return records


def _query_fields(soql: str) -> list[str]:
    match = SOQL.match(soql)
    return [f.strip() for f in match.group("fields").split(",")] if match else []


def _run_query(store: Store, soql: str) -> list[dict[str, Any]]:
    match = SOQL.match(soql)
    if not match:
        raise BulkError(400, "InvalidBatch", "Failed to process query: MALFORMED_QUERY")
    if match.group("object") != "Case":
        raise BulkError(400, "InvalidBatch", f"Failed to process query: INVALID_TYPE: sObject type '{match.group('object')}' is not supported.")
    fields = _query_fields(soql)
    unknown = [f for f in fields if f not in FIELDS]
    where: list[tuple[str, str]] = []
    for part in re.split(r"\s+and\s+", match.group("where") or "", flags=re.IGNORECASE):
        if not part.strip():
            continue
        condition = CONDITION.match(part)
        if not condition:
            raise BulkError(400, "InvalidBatch", "Failed to process query: MALFORMED_QUERY: only field = 'value' conditions joined by AND")
        where.append((condition.group(1), condition.group(2).replace("\\'", "'")))
    unknown += [f for f, _ in where if f not in FIELDS]
    if unknown:
        raise BulkError(400, "InvalidBatch", f"Failed to process query: INVALID_FIELD: No such column '{unknown[0]}' on entity 'Case'.")
    limit = int(match.group("limit")) if match.group("limit") else None
    return store.query_cases(fields, where, limit)


def _parse_info(body: bytes, content_type: str) -> dict[str, str]:
    """A jobInfo document, XML or JSON, as a flat dict."""
    try:
        if "json" in content_type:
            data = json.loads(body or b"{}")
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        root = ET.fromstring(body)
    except (ET.ParseError, json.JSONDecodeError, UnicodeDecodeError):
        raise BulkError(400, "InvalidXML", "Unable to parse the jobInfo document") from None
    return {re.sub(r"\{.*\}", "", child.tag): (child.text or "") for child in root}


def _job_or_404(store: Store, job_id: str) -> dict[str, Any]:
    job = store.job(job_id)
    if job is None:
        raise BulkError(400, "InvalidJob", f"Unable to find job {job_id}")
    return job


def _batch_or_404(store: Store, job_id: str, batch_id: str) -> dict[str, Any]:
    batch = store.batch(batch_id)
    if batch is None or batch["job_id"] != job_id:
        raise BulkError(400, "InvalidBatch", f"Unable to find batch {batch_id} in job {job_id}")
    return batch


def _job_info(store: Store, job: dict[str, Any], version: str) -> dict[str, Any]:
    counts = store.job_counts(job["id"])
    info = {"id": job["id"], "operation": job["operation"], "object": job["object"], "createdById": job["created_by"],
            "createdDate": iso(job["created"]), "systemModstamp": iso(job["modified"]), "state": job["state"]}
    if job["external_id"]:
        info["externalIdFieldName"] = job["external_id"]
    info.update({"concurrencyMode": job["concurrency"], "contentType": job["content_type"],
                 "numberBatchesQueued": counts["Queued"], "numberBatchesInProgress": counts["InProgress"],
                 "numberBatchesCompleted": counts["Completed"], "numberBatchesFailed": counts["Failed"],
                 "numberBatchesTotal": counts["total"], "numberRecordsProcessed": counts["processed"],
                 "numberRetries": 0, "apiVersion": version, "numberRecordsFailed": counts["failed"],
                 "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0})
    return info


def _job_response(store: Store, job: dict[str, Any], request: Request, version: str, status: int = 200) -> Response:
    info = _job_info(store, job, version)
    if "json" in request.headers.get("content-type", ""):
        return JSONResponse(info, status_code=status)
    return _xml(_xml_fields("jobInfo", info), status)


def _batch_info(batch: dict[str, Any]) -> dict[str, Any]:
    info = {"id": batch["id"], "jobId": batch["job_id"], "state": batch["state"]}
    if batch["state_message"]:
        info["stateMessage"] = batch["state_message"]
    info.update({"createdDate": iso(batch["created"]), "systemModstamp": iso(batch["modified"]),
                 "numberRecordsProcessed": batch["processed"], "numberRecordsFailed": batch["failed"],
                 "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0})
    return info


def _batch_response(batch: dict[str, Any], job: dict[str, Any], status: int = 200) -> Response:
    if job["content_type"] == "JSON":
        return JSONResponse(_batch_info(batch), status_code=status)
    return _xml(_xml_fields("batchInfo", _batch_info(batch)), status)


def _media(job: dict[str, Any]) -> str:
    return "application/json" if job["content_type"] == "JSON" else "text/csv"


def _csv(body: str) -> Response:
    """CSV with the bare `text/csv` content type Salesforce sends (the client compares it exactly)."""
    return Response(body.encode("utf-8"), headers={"Content-Type": "text/csv"})


def _xml_fields(tag: str, values: dict[str, Any], ns: bool = True) -> str:
    inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in values.items())
    return f'<{tag} xmlns="{NS}">{inner}</{tag}>' if ns else f"<{tag}>{inner}</{tag}>"


def _xml(body: str, status: int = 200) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>' + body, status_code=status, media_type="application/xml")


def _error_response(exc: BulkError, json_format: bool) -> Response:
    if json_format:
        return JSONResponse({"exceptionCode": exc.code, "exceptionMessage": exc.message}, status_code=exc.status)
    return _xml(f'<error xmlns="{NS}"><exceptionCode>{escape(exc.code)}</exceptionCode>'
                f"<exceptionMessage>{escape(exc.message)}</exceptionMessage></error>", exc.status)


def _oauth_error(error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _soap_fault(code: str, exception_code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode>'
            f"<faultstring>{exception_code}: {escape(message)}</faultstring><detail><sf:LoginFault>"
            f"<sf:exceptionCode>{exception_code}</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
            f"</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>")
    return Response(body, status_code=500, media_type="text/xml")


def _verify_jwt(assertion: str, config: EmulatorConfig, base: str) -> tuple[str, str | None]:
    """Check a JWT bearer assertion as Salesforce does: RS256 signed by the connected app's key, iss = client id,
    aud = the login URL, not expired, sub = a known user. Returns (subject, problem)."""
    import jwt

    if not config.jwt_public_key:
        return "", "no certificate is registered for this connected app (set CENTRALITA_SF_JWT_PUBLIC_KEY_FILE)"
    audiences = ["https://login.salesforce.com", "https://test.salesforce.com", base]
    try:
        claims = jwt.decode(assertion, config.jwt_public_key, algorithms=["RS256"], audience=audiences,
                            issuer=config.client_id, options={"require": ["exp", "iss", "sub", "aud"]})
    except jwt.ExpiredSignatureError:
        return "", "expired authorization code"
    except jwt.PyJWTError as exc:
        return "", f"invalid assertion ({type(exc).__name__})"
    if claims["sub"] != config.username:
        return "", "user hasn't approved this consumer"
    return str(claims["sub"]), None


__all__ = ["create_app", "EmulatorConfig", "MAX_BATCH_RECORDS", "MAX_BATCH_BYTES", "DATA_FIELDS"]
