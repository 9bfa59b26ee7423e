"""The unchanged `salesforce-bulk` client (and plain HTTP for the logins) against the emulator over HTTP."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
import requests
from salesforce_bulk import CsvDictsAdapter, SalesforceBulk
from salesforce_bulk.salesforce_bulk import BulkApiError, BulkBatchFailed

DEV_CLIENT = {"client_id": "centralita-dev-client", "client_secret": "centralita-dev-only"}


def token(url: str) -> str:
    response = requests.post(f"{url}/services/oauth2/token", data={"grant_type": "client_credentials", **DEV_CLIENT})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def bulk(salesforce) -> SalesforceBulk:
    return SalesforceBulk(sessionId=token(salesforce.url), host=salesforce.url)


def wait(bulk: SalesforceBulk, job: str, batch: str) -> None:
    deadline = time.monotonic() + 30
    while not bulk.is_batch_done(batch, job):
        assert time.monotonic() < deadline, "batch did not finish"
        time.sleep(0.05)


def case(prefix: str, i: int, **fields) -> dict:
    return {"Centralita_Case_Id__c": f"{prefix}-{i}", "Subject": f"Subject {i}", "Origin": "WhatsApp",
            "Status": "New", "Priority": "Medium", **fields}


# -- logins -------------------------------------------------------------------------------------------------

def test_client_credentials_token_and_its_refusals(salesforce) -> None:
    ok = requests.post(f"{salesforce.url}/services/oauth2/token", data={"grant_type": "client_credentials", **DEV_CLIENT})
    body = ok.json()
    assert ok.status_code == 200 and body["token_type"] == "Bearer" and body["instance_url"] == salesforce.url
    bad = requests.post(f"{salesforce.url}/services/oauth2/token",
                        data={"grant_type": "client_credentials", "client_id": DEV_CLIENT["client_id"], "client_secret": "wrong"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    password = requests.post(f"{salesforce.url}/services/oauth2/token",
                             data={"grant_type": "password", "username": "u", "password": "p", **DEV_CLIENT})
    assert password.status_code == 400 and password.json()["error"] == "unsupported_grant_type"


def test_jwt_bearer_flow_signed_with_the_registered_key(salesforce) -> None:
    claims = {"iss": DEV_CLIENT["client_id"], "sub": "integration@centralita.dev", "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 120}
    assertion = jwt.encode(claims, salesforce.jwt_private_key.read_text(), algorithm="RS256")
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ok = requests.post(f"{salesforce.url}/services/oauth2/token", data={"grant_type": grant, "assertion": assertion})
    assert ok.status_code == 200, ok.text
    bulk = SalesforceBulk(sessionId=ok.json()["access_token"], host=salesforce.url)
    assert bulk.create_query_job("Case", contentType="CSV").startswith("750")

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    forged = jwt.encode(claims, other_key, algorithm="RS256")
    refused = requests.post(f"{salesforce.url}/services/oauth2/token", data={"grant_type": grant, "assertion": forged})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    expired = jwt.encode({**claims, "exp": int(time.time()) - 10}, salesforce.jwt_private_key.read_text(), algorithm="RS256")
    assert requests.post(f"{salesforce.url}/services/oauth2/token",
                         data={"grant_type": grant, "assertion": expired}).json()["error"] == "invalid_grant"


def test_soap_login(salesforce) -> None:
    envelope = ('<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
                'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">'
                "<n1:username>integration@centralita.dev</n1:username><n1:password>{}</n1:password></n1:login></env:Body></env:Envelope>")
    ok = requests.post(f"{salesforce.url}/services/Soap/u/59.0", data=envelope.format("centralita-dev-only"),
                       headers={"Content-Type": "text/xml", "SOAPAction": "login"})
    assert ok.status_code == 200 and "<sessionId>" in ok.text
    session = ok.text.split("<sessionId>")[1].split("</sessionId>")[0]
    assert SalesforceBulk(sessionId=session, host=salesforce.url).create_query_job("Case").startswith("750")
    bad = requests.post(f"{salesforce.url}/services/Soap/u/59.0", data=envelope.format("wrong"))
    assert bad.status_code == 500 and "INVALID_LOGIN" in bad.text


# -- Bulk API jobs and batches -------------------------------------------------------------------------------

def test_csv_insert_then_upsert_then_query(bulk: SalesforceBulk) -> None:
    prefix = f"csv-{uuid.uuid4().hex[:8]}"
    job = bulk.create_insert_job("Case", contentType="CSV")
    batch = bulk.post_batch(job, CsvDictsAdapter(iter([case(prefix, i) for i in range(3)])))
    bulk.close_job(job)
    wait(bulk, job, batch)
    inserted = bulk.get_batch_results(batch, job)
    assert [(r.success, r.created) for r in inserted] == [("true", "true")] * 3
    assert all(r.id.startswith("500") and len(r.id) == 18 for r in inserted)

    job = bulk.create_upsert_job("Case", "Centralita_Case_Id__c", contentType="CSV")
    rows = [case(prefix, 0, Status="Closed"), case(prefix, 3)]
    batch = bulk.post_batch(job, CsvDictsAdapter(iter(rows)))
    bulk.close_job(job)
    wait(bulk, job, batch)
    upserted = bulk.get_batch_results(batch, job)
    assert [(r.success, r.created) for r in upserted] == [("true", "false"), ("true", "true")]
    assert upserted[0].id == inserted[0].id
    status = bulk.job_status(job)
    assert status["state"] == "Closed" and status["numberRecordsProcessed"] == "2" and status["numberBatchesCompleted"] == "1"

    job = bulk.create_query_job("Case", contentType="CSV")
    batch = bulk.query(job, f"SELECT Id, Centralita_Case_Id__c, Status FROM Case WHERE Centralita_Case_Id__c = '{prefix}-0'")
    bulk.close_job(job)
    wait(bulk, job, batch)
    results = [r.read().decode() for r in bulk.get_all_results_for_query_batch(batch, job)]
    assert results == [f'"Id","Centralita_Case_Id__c","Status"\n"{inserted[0].id}","{prefix}-0","Closed"\n']


def test_json_upsert_update_and_query(bulk: SalesforceBulk) -> None:
    prefix = f"json-{uuid.uuid4().hex[:8]}"
    job = bulk.create_upsert_job("Case", "Centralita_Case_Id__c", contentType="JSON")
    batch = bulk.post_batch(job, json.dumps([case(prefix, i) for i in range(2)]))
    bulk.close_job(job)
    wait(bulk, job, batch)
    results = bulk.get_batch_results(batch, job)
    assert [(r.success, r.created, r.error) for r in results] == [(True, True, [])] * 2

    job = bulk.create_update_job("Case", contentType="JSON")
    batch = bulk.post_batch(job, json.dumps([{"Id": results[1].id, "Priority": "High"}]))
    bulk.close_job(job)
    wait(bulk, job, batch)
    assert bulk.get_batch_results(batch, job)[0].success is True

    job = bulk.create_query_job("Case", contentType="JSON")
    batch = bulk.query(job, f"SELECT Id, Priority FROM Case WHERE Centralita_Case_Id__c = '{prefix}-1'")
    bulk.close_job(job)
    wait(bulk, job, batch)
    rows = [json.load(r) for r in bulk.get_all_results_for_query_batch(batch, job)][0]
    assert rows[0]["Id"] == results[1].id and rows[0]["Priority"] == "High"
    assert [b["state"] for b in bulk.get_batch_list(job)] == ["Completed"]


def test_field_validation_returns_salesforce_error_codes(bulk: SalesforceBulk) -> None:
    prefix = f"val-{uuid.uuid4().hex[:8]}"
    rows = [
        {"Centralita_Case_Id__c": f"{prefix}-0", "Subject": "no status", "Origin": "Web"},
        case(prefix, 1, Origin="CarrierPigeon"),
        case(prefix, 2, Subject="x" * 256),
        case(prefix, 3, Favourite_Colour__c="blue"),
        case(prefix, 4),
        case(prefix, 4),
        {"Subject": "no external id", "Origin": "Web", "Status": "New"},
    ]
    job = bulk.create_upsert_job("Case", "Centralita_Case_Id__c", contentType="JSON")
    batch = bulk.post_batch(job, json.dumps(rows))
    bulk.close_job(job)
    wait(bulk, job, batch)
    codes = [r.error[0]["statusCode"] if r.error else None for r in bulk.get_batch_results(batch, job)]
    assert codes == ["REQUIRED_FIELD_MISSING", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "STRING_TOO_LONG",
                     "INVALID_FIELD", "DUPLICATE_VALUE", "DUPLICATE_VALUE", "MISSING_ARGUMENT"]


def test_csv_error_column_has_salesforce_format(bulk: SalesforceBulk) -> None:
    job = bulk.create_insert_job("Case", contentType="CSV")
    batch = bulk.post_batch(job, CsvDictsAdapter(iter([{"Subject": "s", "Origin": "Web", "Status": "Nope"}])))
    bulk.close_job(job)
    wait(bulk, job, batch)
    [result] = bulk.get_batch_results(batch, job)
    assert result.success == "false"
    assert result.error == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Status: bad value for restricted picklist field:Status --"


def test_batch_limits(bulk: SalesforceBulk) -> None:
    job = bulk.create_insert_job("Case", contentType="JSON")
    too_many = [{"Subject": "s", "Origin": "Web", "Status": "New"}] * 10_001
    batch = bulk.post_batch(job, json.dumps(too_many))
    with pytest.raises(BulkBatchFailed, match="10000"):
        wait(bulk, job, batch)
    with pytest.raises(BulkApiError, match="InvalidBatch") as too_big:
        bulk.post_batch(job, json.dumps([{"Subject": "x" * 1000, "Origin": "Web", "Status": "New"}] * 10_500))
    assert too_big.value.status_code == 400
    bulk.abort_job(job)
    assert bulk.job_status(job)["state"] == "Aborted"
    with pytest.raises(BulkApiError, match="InvalidJobState"):
        bulk.post_batch(job, "[]")


def test_expired_session_request_limit_and_injected_5xx(salesforce, bulk: SalesforceBulk) -> None:
    salesforce.faults(fail_next=1, fail_status=503)
    with pytest.raises(BulkApiError) as unavailable:
        bulk.create_insert_job("Case", contentType="JSON")
    assert unavailable.value.status_code == 503

    salesforce.faults(api_limit=1)
    bulk.create_insert_job("Case", contentType="JSON")
    with pytest.raises(BulkApiError, match="REQUEST_LIMIT_EXCEEDED") as limited:
        bulk.create_insert_job("Case", contentType="JSON")
    assert limited.value.status_code == 403
    salesforce.faults(api_limit=1_000_000)

    salesforce.faults(expire_sessions=True)
    with pytest.raises(BulkApiError, match="InvalidSessionId") as expired:
        bulk.create_insert_job("Case", contentType="JSON")
    assert "INVALID_SESSION_ID" in str(expired.value) and expired.value.status_code == 400
    assert SalesforceBulk(sessionId=token(salesforce.url), host=salesforce.url).create_insert_job("Case").startswith("750")


def test_unknown_object_and_operation_are_refused(bulk: SalesforceBulk) -> None:
    with pytest.raises(BulkApiError, match="Unable to find object: Widget"):
        bulk.create_insert_job("Widget")
    with pytest.raises(BulkApiError, match="Invalid operation"):
        bulk.create_job("Case", "merge")
