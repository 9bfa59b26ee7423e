"""Spark's Kafka connector jars, fetched with Maven once per Spark version (never at job run time).

Only the jars the pyspark wheel does not already carry are put on Spark's classpath (the connector, its
token provider, kafka-clients, commons-pool2), so two versions of Hadoop or Scala never meet.
"""

from __future__ import annotations

import re
from pathlib import Path

from infra.maven import maven_jars
from infra.settings import PROJECT_ROOT, get_settings

POM = PROJECT_ROOT / "infra" / "spark" / "pom.xml"


def _artifact(jar: Path) -> str:
    return re.sub(r"-\d[\w.]*\.jar$", "", jar.name)


def kafka_connector_jars() -> list[str]:
    import pyspark

    version = pyspark.__version__
    target = maven_jars(POM, get_settings().cache_dir / "spark" / f"kafka-connector-{version}", {"spark.version": version},
                        f"org.apache.spark:spark-sql-kafka-0-10_2.13:{version}")
    bundled = {_artifact(j) for j in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    return sorted(str(j) for j in target.glob("*.jar") if _artifact(j) not in bundled)
