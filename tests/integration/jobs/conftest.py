"""One real Spark session (local[2]) for the job tests of a module."""

import pytest

from jobs.anonymize import spark_session


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
